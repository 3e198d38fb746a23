/*
 * split: a deterministic train/eval(/test) split of an Examples artifact (C, on the C SDK).
 *
 * Each record goes to the split whose share of [0, 1) holds h(record) / 2^53, where h is a
 * 64-bit FNV-1a hash of the seed (8 bytes, little-endian) followed by the key: the bytes of the
 * `key` feature's first value (int64s as decimal text, floats as "%.9g") or, without a key, the
 * serialized record, finished with the splitmix64 mixer. Only integer arithmetic decides, so every
 * machine gives the same split. Records keep their input order within each split.
 */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "zenml_step.h"

#define MAX_SPLITS 3

static const char *const SPLIT_NAMES[MAX_SPLITS] = {"train", "eval", "test"};
static const char *const RATIO_KEYS[MAX_SPLITS] = {"train_ratio", "eval_ratio", "test_ratio"};

static uint64_t fnv1a(uint64_t hash, const void *data, size_t length) {
    const uint8_t *bytes = data;
    for (size_t i = 0; i < length; i++) {
        hash ^= bytes[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The hash of one record; `key` NULL means the serialized record. A record without the key
 * feature falls back to its bytes too, so it still lands in a split deterministically. */
static uint64_t record_hash(uint64_t seed, const char *key, const zs_example *example, const uint8_t *record,
                            size_t length, int64_t *missing_keys) {
    uint8_t seed_bytes[8];
    for (int i = 0; i < 8; i++) seed_bytes[i] = (uint8_t)(seed >> (8 * i));
    uint64_t hash = fnv1a(0xcbf29ce484222325ULL, seed_bytes, sizeof seed_bytes);
    const zs_feature *feature = key ? zs_example_get(example, key) : NULL;
    if (feature != NULL && feature->count > 0) {
        char text[64];
        switch (feature->kind) {
        case ZS_FEATURE_BYTES:
            hash = fnv1a(hash, feature->bytes[0].data, feature->bytes[0].length);
            break;
        case ZS_FEATURE_INT64:
            snprintf(text, sizeof text, "%" PRId64, feature->int64s[0]);
            hash = fnv1a(hash, text, strlen(text));
            break;
        case ZS_FEATURE_FLOAT:
            snprintf(text, sizeof text, "%.9g", (double)feature->floats[0]);
            hash = fnv1a(hash, text, strlen(text));
            break;
        default:
            hash = fnv1a(hash, record, length);
        }
    } else {
        if (key != NULL) (*missing_keys)++;
        hash = fnv1a(hash, record, length);
    }
    return mix(hash);
}

int main(void) {
    json_t *request = zs_read_request();
    const char *input = zs_input_path(request, "examples", 0);
    const char *output = zs_output_path(request, "examples");
    if (input == NULL || output == NULL) zs_fail("the request has no 'examples' input or output");

    double ratios[MAX_SPLITS], total = 0;
    for (int i = 0; i < MAX_SPLITS; i++) {
        ratios[i] = zs_config_number(request, RATIO_KEYS[i], i == 0 ? 0.8 : i == 1 ? 0.2 : 0.0);
        if (!(ratios[i] >= 0) || !isfinite(ratios[i])) zs_fail("%s must be a number >= 0", RATIO_KEYS[i]);
        total += ratios[i];
    }
    if (ratios[0] <= 0 || ratios[1] <= 0)
        zs_fail("train_ratio and eval_ratio must both be above 0 (got %g and %g)", ratios[0], ratios[1]);
    int splits = ratios[2] > 0 ? 3 : 2;
    /* Thresholds on the 53-bit hash, computed once from the ratios: integers decide from here on. */
    uint64_t bounds[MAX_SPLITS];
    double cumulative = 0;
    for (int i = 0; i < splits; i++) {
        cumulative += ratios[i] / total;
        bounds[i] = i == splits - 1 ? ((uint64_t)1 << 53) : (uint64_t)llround(cumulative * 9007199254740992.0);
    }
    const char *key = zs_config_string(request, "key", NULL);
    if (key != NULL && key[0] == '\0') key = NULL;
    uint64_t seed = (uint64_t)zs_config_integer(request, "seed", 0);
    int shards = (int)zs_config_integer(request, "shards", 1);
    int compression = zs_compression_from_name(zs_config_string(request, "compression", "GZIP"));
    if (compression < 0) zs_fail("compression must be NONE, GZIP or ZLIB");
    if (shards < 1 || shards > 1024) zs_fail("shards must be between 1 and 1024");

    zs_error error;
    zs_sharded_writer *writers[MAX_SPLITS];
    for (int i = 0; i < splits; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", output, SPLIT_NAMES[i]);
        if (mkdir(path, 0755) != 0) zs_fail("cannot create %s: %s", path, strerror(errno));
        writers[i] = zs_sharded_writer_open(path, "data", shards, (zs_compression)compression, &error);
        if (writers[i] == NULL) zs_fail("%s", error.message);
    }

    zs_reader *reader = zs_reader_open(input, ZS_COMPRESSION_AUTO, &error);
    if (reader == NULL) zs_fail("%s", error.message);
    zs_example *example = zs_example_new();
    int64_t counts[MAX_SPLITS] = {0}, missing_keys = 0, records = 0;
    const uint8_t *data;
    size_t length;
    zs_status status;
    while ((status = zs_reader_next(reader, &data, &length, &error)) == ZS_OK) {
        if (key != NULL && zs_example_parse(example, data, length, &error) != ZS_OK)
            zs_fail("%s: record %" PRId64 " is not a tf.train.Example: %s", input, records, error.message);
        uint64_t point = record_hash(seed, key, example, data, length, &missing_keys) >> 11;
        int split = 0;
        while (split < splits - 1 && point >= bounds[split]) split++;
        if (zs_sharded_writer_write(writers[split], data, length, &error) != ZS_OK) zs_fail("%s", error.message);
        counts[split]++;
        records++;
    }
    if (status != ZS_END) zs_fail("%s", error.message);
    zs_reader_close(reader);
    zs_example_free(example);
    for (int i = 0; i < splits; i++)
        if (zs_sharded_writer_close(writers[i], &error) != ZS_OK) zs_fail("%s", error.message);
    if (missing_keys > 0)
        zs_log("warning: %" PRId64 " records have no value for the key feature '%s'; they were split by their bytes",
               missing_keys, key);

    zs_response *response = zs_response_new();
    char names[32] = "";
    for (int i = 0; i < splits; i++) {
        char property[32];
        snprintf(property, sizeof property, "%s_records", SPLIT_NAMES[i]);
        zs_response_property_integer(response, "examples", property, counts[i]);
        zs_response_metric(response, property, (double)counts[i]);
        strcat(names, i ? "," : "");
        strcat(names, SPLIT_NAMES[i]);
    }
    zs_response_property_string(response, "examples", "splits", names);
    zs_response_property_integer(response, "examples", "records", records);
    zs_response_metric(response, "records", (double)records);
    char message[160];
    snprintf(message, sizeof message, "%" PRId64 " records: %" PRId64 " train, %" PRId64 " eval, %" PRId64 " test",
             records, counts[0], counts[1], counts[2]);
    zs_response_message(response, message);
    json_decref(request);
    return zs_response_write(response) == 0 ? 0 : 1;
}
