/*
 * Tests of the C step SDK (protocol/c/zenml_step.[ch]) against the TensorFlow-written files in
 * shared/testdata/tfrecord/ and their description, vectors.json.
 *
 *   cc -O2 -o test_zenml_step tests/test_zenml_step.c zenml_step.c $(pkg-config --cflags --libs jansson zlib)
 *   ./test_zenml_step [VECTORS_DIRECTORY]
 *
 * The vectors directory is the argument, else $ZENML_TFRECORD_TESTDATA, else
 * <repo>/../shared/testdata/tfrecord found from this file's path. Each test prints "ok" or "FAIL"
 * with the failed expectations; the last line is "N passed, N failed". Exit status 0 only when
 * nothing failed.
 */

#define _GNU_SOURCE
#include "../zenml_step.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation" /* long paths are cut in messages only */
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* ---- A tiny test runner -------------------------------------------------------------------------- */

static int tests_passed, tests_failed, current_failures;
static const char *current_test;

#define EXPECT(condition, ...)                                                                                        \
    do {                                                                                                              \
        if (!(condition)) expectation_failed(__LINE__, #condition, __VA_ARGS__);                                      \
    } while (0)

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void expectation_failed(int line, const char *condition, const char *format, ...) {
    if (current_failures < 10) {
        printf("  line %d: expected %s: ", line, condition);
        va_list arguments;
        va_start(arguments, format);
        vprintf(format, arguments);
        va_end(arguments);
        printf("\n");
    } else if (current_failures == 10) {
        printf("  (more failures in this test not shown)\n");
    }
    current_failures++;
}

static void run_test(const char *name, void (*test)(void)) {
    current_test = name;
    current_failures = 0;
    test();
    if (current_failures == 0) {
        tests_passed++;
        printf("ok   %s\n", name);
    } else {
        tests_failed++;
        printf("FAIL %s (%d failed expectations)\n", name, current_failures);
    }
    fflush(stdout);
}

#define RUN(test) run_test(#test, test)

/* ---- Files, vectors, helpers ---------------------------------------------------------------------- */

static char vectors_dir[PATH_MAX * 3];
static char temp_dir[PATH_MAX];
static json_t *vectors;

typedef struct buffer {
    uint8_t *data;
    size_t length;
} buffer;

static void buffer_free(buffer *b) {
    free(b->data);
    b->data = NULL;
    b->length = 0;
}

static buffer read_file(const char *path) {
    buffer b = {NULL, 0};
    FILE *file = fopen(path, "rb");
    if (file == NULL) return b;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    b.data = malloc(size > 0 ? (size_t)size : 1);
    b.length = fread(b.data, 1, (size_t)size, file);
    fclose(file);
    return b;
}

static void write_file(const char *path, const void *data, size_t length) {
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        printf("cannot create %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (length) fwrite(data, 1, length, file);
    fclose(file);
}

static const char *vector_path(const char *name) {
    static char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", vectors_dir, name);
    return path;
}

static const char *temp_path(const char *name) {
    static char paths[4][PATH_MAX * 2];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, PATH_MAX * 2, "%s/%s", temp_dir, name);
    return path;
}

static buffer base64_decode(const char *text) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t length = strlen(text);
    buffer b = {malloc(length / 4 * 3 + 3), 0};
    uint32_t accumulator = 0;
    int bits = 0;
    for (size_t i = 0; i < length && text[i] != '='; i++) {
        const char *found = strchr(alphabet, text[i]);
        if (found == NULL) continue;
        accumulator = (accumulator << 6) | (uint32_t)(found - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b.data[b.length++] = (uint8_t)(accumulator >> bits);
        }
    }
    return b;
}

static json_t *vector_file(const char *name) { return json_object_get(json_object_get(vectors, "files"), name); }

/* The record descriptions of a file, following same_records_as. */
static json_t *vector_records(const char *name) {
    json_t *file = vector_file(name);
    json_t *records = json_object_get(file, "records");
    if (records) return records;
    return vector_records(json_string_value(json_object_get(file, "same_records_as")));
}

static buffer record_data(json_t *record) {
    json_t *b64 = json_object_get(record, "serialized_b64");
    if (b64 == NULL) b64 = json_object_get(record, "data_b64");
    return base64_decode(json_string_value(b64));
}

/* Every record of a file as decoded from vectors.json, concatenated with their lengths. */
typedef struct record_list {
    buffer *records;
    size_t count;
} record_list;

static record_list expected_records(const char *name) {
    json_t *records = vector_records(name);
    record_list list = {calloc(json_array_size(records) + 1, sizeof(buffer)), json_array_size(records)};
    for (size_t i = 0; i < list.count; i++) list.records[i] = record_data(json_array_get(records, i));
    return list;
}

static void record_list_free(record_list *list) {
    for (size_t i = 0; i < list->count; i++) buffer_free(&list->records[i]);
    free(list->records);
}

/* Reads a whole file: its records (copies) until the end or an error. */
typedef struct read_result {
    record_list list;
    zs_status status; /* ZS_END, or the error */
    zs_error error;
    zs_compression compression;
} read_result;

static read_result read_all_with(const char *path, const zs_reader_options *options) {
    read_result result;
    memset(&result, 0, sizeof result);
    size_t capacity = 16;
    result.list.records = calloc(capacity, sizeof(buffer));
    zs_reader *reader = zs_reader_open_with(path, options, &result.error);
    if (reader == NULL) {
        result.status = result.error.code;
        return result;
    }
    result.compression = zs_reader_compression(reader);
    const uint8_t *data;
    size_t length;
    while ((result.status = zs_reader_next(reader, &data, &length, &result.error)) == ZS_OK) {
        if (result.list.count == capacity) {
            capacity *= 2;
            result.list.records = realloc(result.list.records, capacity * sizeof(buffer));
        }
        buffer copy = {malloc(length + 1), length};
        if (length) memcpy(copy.data, data, length);
        result.list.records[result.list.count++] = copy;
    }
    zs_reader_close(reader);
    return result;
}

static read_result read_all(const char *path, zs_compression compression) {
    zs_reader_options options = zs_reader_default_options();
    options.compression = compression;
    return read_all_with(path, &options);
}

static int records_equal(const record_list *a, const record_list *b, size_t count) {
    if (a->count < count || b->count < count) return 0;
    for (size_t i = 0; i < count; i++) {
        if (a->records[i].length != b->records[i].length) return 0;
        if (a->records[i].length && memcmp(a->records[i].data, b->records[i].data, a->records[i].length) != 0) return 0;
    }
    return 1;
}

static void write_records(const char *path, const record_list *list, zs_compression compression) {
    zs_error error;
    zs_writer *writer = zs_writer_open(path, compression, -1, &error);
    EXPECT(writer != NULL, "%s", error.message);
    if (writer == NULL) return;
    for (size_t i = 0; i < list->count; i++)
        EXPECT(zs_writer_write(writer, list->records[i].data, list->records[i].length, &error) == ZS_OK, "%s",
               error.message);
    EXPECT(zs_writer_close(writer, &error) == ZS_OK, "%s", error.message);
}

/* A record framed from the format description alone: length, masked CRCs, bit-by-bit CRC-32C. */
static uint32_t crc32c_bitwise(const uint8_t *data, size_t length) {
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < length; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return crc ^ 0xffffffffu;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int feature_equals_vector(const zs_feature *feature, json_t *description) {
    const char *kind = json_string_value(json_object_get(description, "kind"));
    if (strcmp(kind, "int64_list") == 0) {
        json_t *values = json_object_get(description, "values");
        if (feature->kind != ZS_FEATURE_INT64 || feature->count != json_array_size(values)) return 0;
        for (size_t i = 0; i < feature->count; i++)
            if (feature->int64s[i] != (int64_t)json_integer_value(json_array_get(values, i))) return 0;
        return 1;
    }
    if (strcmp(kind, "float_list") == 0) {
        json_t *values = json_object_get(description, "f32_hex");
        if (feature->kind != ZS_FEATURE_FLOAT || feature->count != json_array_size(values)) return 0;
        for (size_t i = 0; i < feature->count; i++) {
            uint32_t bits;
            memcpy(&bits, &feature->floats[i], 4);
            if (bits != (uint32_t)strtoul(json_string_value(json_array_get(values, i)), NULL, 16)) return 0;
        }
        return 1;
    }
    if (strcmp(kind, "bytes_list") == 0) {
        json_t *values = json_object_get(description, "values_b64");
        if (feature->kind != ZS_FEATURE_BYTES || feature->count != json_array_size(values)) return 0;
        for (size_t i = 0; i < feature->count; i++) {
            buffer expected = base64_decode(json_string_value(json_array_get(values, i)));
            int same = expected.length == feature->bytes[i].length &&
                       (expected.length == 0 || memcmp(expected.data, feature->bytes[i].data, expected.length) == 0);
            buffer_free(&expected);
            if (!same) return 0;
        }
        return 1;
    }
    return feature->kind == ZS_FEATURE_UNSET;
}

/* vectors.json's canonical_line of a decoded example, built with jansson. */
static char *canonical_line(const zs_example *example) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    json_t *line = json_object();
    for (size_t i = 0; i < example->count; i++) {
        const zs_feature *feature = &example->features[i];
        json_t *values = json_array();
        const char *kind = "none";
        for (size_t j = 0; j < feature->count; j++) {
            char text[1024];
            if (feature->kind == ZS_FEATURE_INT64) {
                kind = "int64";
                snprintf(text, sizeof text, "%lld", (long long)feature->int64s[j]);
            } else if (feature->kind == ZS_FEATURE_FLOAT) {
                kind = "float";
                uint32_t bits;
                memcpy(&bits, &feature->floats[j], 4);
                snprintf(text, sizeof text, "%08x", bits);
            } else {
                kind = "bytes";
                const uint8_t *p = feature->bytes[j].data;
                size_t n = feature->bytes[j].length, o = 0;
                for (size_t k = 0; k < n; k += 3) {
                    uint32_t v = (uint32_t)p[k] << 16 | (k + 1 < n ? (uint32_t)p[k + 1] << 8 : 0) | (k + 2 < n ? p[k + 2] : 0);
                    text[o++] = alphabet[v >> 18];
                    text[o++] = alphabet[(v >> 12) & 63];
                    text[o++] = k + 1 < n ? alphabet[(v >> 6) & 63] : '=';
                    text[o++] = k + 2 < n ? alphabet[v & 63] : '=';
                }
                text[o] = '\0';
            }
            json_array_append_new(values, json_string(text));
        }
        if (feature->count == 0)
            kind = feature->kind == ZS_FEATURE_INT64 ? "int64"
                   : feature->kind == ZS_FEATURE_FLOAT ? "float"
                   : feature->kind == ZS_FEATURE_BYTES ? "bytes"
                                                       : "none";
        json_t *entry = json_object();
        json_object_set_new(entry, kind, values);
        json_object_set_new(line, feature->name, entry);
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(line);
    return text;
}

static const char *ALL_FILES[] = {"empty.tfrecord", "raw.tfrecord", "examples.tfrecord", "examples.gz.tfrecord",
                                  "examples.zlib.tfrecord"};
static const zs_compression ALL_COMPRESSIONS[] = {ZS_COMPRESSION_NONE, ZS_COMPRESSION_NONE, ZS_COMPRESSION_NONE,
                                                  ZS_COMPRESSION_GZIP, ZS_COMPRESSION_ZLIB};

/* ---- CRC-32C ----------------------------------------------------------------------------------------- */

static void test_crc32c_check_value(void) {
    json_t *check = json_object_get(json_object_get(vectors, "format"), "crc32c_check_value");
    const char *input = json_string_value(json_object_get(check, "input_ascii"));
    uint32_t expected = (uint32_t)strtoul(json_string_value(json_object_get(check, "crc32c")), NULL, 16);
    EXPECT(expected == 0xE3069283u, "%08x", expected);
    EXPECT(zs_crc32c(0, input, strlen(input)) == expected, "%08x", zs_crc32c(0, input, strlen(input)));
    EXPECT(zs_crc32c_portable(0, input, strlen(input)) == expected, "portable");
    EXPECT(crc32c_bitwise((const uint8_t *)input, strlen(input)) == expected, "bitwise");
    EXPECT(zs_crc32c(0, NULL, 0) == 0, "empty");
    EXPECT(zs_unmask_crc(zs_mask_crc(expected)) == expected, "unmask");
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2") && getenv("ZS_CRC32C_PORTABLE") == NULL)
        EXPECT(strcmp(zs_crc32c_implementation(), "SSE4.2") == 0, "%s on a CPU with SSE4.2", zs_crc32c_implementation());
#endif
}

static void test_hardware_and_portable_crc_agree(void) {
    size_t size = 3 * 8192 * 3 + 4096;
    uint8_t *blob = malloc(size + 16);
    for (size_t i = 0; i < size + 16; i++) blob[i] = (uint8_t)next_random();
    /* Around the three-chain loops' round sizes: 3 x 256 and 3 x 4096 bytes, and multiples. */
    size_t lengths[] = {0,     1,     2,     3,     7,     8,     9,     15,    16,    17,    31,    63,
                        64,    255,   256,   767,   768,   769,   1000,  1535,  1536,  1537,  4096,  8191,
                        12287, 12288, 12289, 13055, 13056, 13057, 24575, 24576, 24577, 50000, size};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        for (size_t offset = 0; offset < 8; offset += 3) {
            const uint8_t *data = blob + offset;
            uint32_t fast = zs_crc32c(0, data, lengths[i]);
            EXPECT(fast == zs_crc32c_portable(0, data, lengths[i]), "length %zu offset %zu", lengths[i], offset);
            if (lengths[i] <= 50000)
                EXPECT(fast == crc32c_bitwise(data, lengths[i]), "bitwise, length %zu offset %zu", lengths[i], offset);
            /* Extending equals the checksum of the concatenation. */
            size_t half = lengths[i] / 3;
            EXPECT(zs_crc32c(zs_crc32c(0, data, half), data + half, lengths[i] - half) == fast, "extend %zu", lengths[i]);
            EXPECT(zs_crc32c_portable(zs_crc32c_portable(0, data, half), data + half, lengths[i] - half) == fast,
                   "portable extend %zu", lengths[i]);
        }
    }
    /* Every length up to 5,000 at every misalignment, from a nonzero starting CRC. */
    for (size_t length = 0; length <= 5000; length++) {
        for (size_t offset = 0; offset < 8; offset++) {
            uint32_t seed = (uint32_t)(length * 2654435761u);
            if (zs_crc32c(seed, blob + offset, length) != zs_crc32c_portable(seed, blob + offset, length)) {
                EXPECT(0, "length %zu offset %zu from %08x", length, offset, seed);
                free(blob);
                return;
            }
        }
    }
    free(blob);
}

static void test_masked_crcs_match_every_record_header(void) {
    const char *names[] = {"raw.tfrecord", "examples.tfrecord"};
    for (int n = 0; n < 2; n++) {
        json_t *records = vector_records(names[n]);
        for (size_t i = 0; i < json_array_size(records); i++) {
            json_t *record = json_array_get(records, i);
            buffer data = record_data(record);
            uint8_t length[8];
            for (int k = 0; k < 8; k++) length[k] = (uint8_t)((uint64_t)data.length >> (8 * k));
            EXPECT(zs_mask_crc(zs_crc32c(0, length, 8)) ==
                       (uint32_t)json_integer_value(json_object_get(record, "masked_crc_length")),
                   "%s record %zu length CRC", names[n], i);
            EXPECT(zs_mask_crc(zs_crc32c(0, data.data, data.length)) ==
                       (uint32_t)json_integer_value(json_object_get(record, "masked_crc_data")),
                   "%s record %zu data CRC", names[n], i);
            buffer_free(&data);
        }
    }
}

/* ---- Reading ------------------------------------------------------------------------------------------ */

static void test_every_vector_file_is_read_exactly(void) {
    for (int f = 0; f < 5; f++) {
        const char *name = ALL_FILES[f];
        json_t *file = vector_file(name);
        EXPECT(strcmp(json_string_value(json_object_get(file, "compression")), zs_compression_name(ALL_COMPRESSIONS[f])) == 0,
               "%s compression", name);
        record_list expected = expected_records(name);
        EXPECT(expected.count == (size_t)json_integer_value(json_object_get(file, "record_count")), "%s count", name);
        zs_compression requests[] = {ZS_COMPRESSION_AUTO, ALL_COMPRESSIONS[f]};
        for (int r = 0; r < 2; r++) {
            read_result result = read_all(vector_path(name), requests[r]);
            EXPECT(result.status == ZS_END, "%s: %s", name, result.error.message);
            EXPECT(result.compression == ALL_COMPRESSIONS[f], "%s detected as %s", name,
                   zs_compression_name(result.compression));
            EXPECT(result.list.count == expected.count && records_equal(&result.list, &expected, expected.count),
                   "%s: %zu records", name, result.list.count);
            record_list_free(&result.list);
        }
        record_list_free(&expected);
    }
}

static void test_the_end_stays_the_end_and_the_zero_byte_record(void) {
    zs_error error;
    zs_reader *reader = zs_reader_open(vector_path("raw.tfrecord"), ZS_COMPRESSION_AUTO, &error);
    EXPECT(reader != NULL, "%s", error.message);
    if (reader == NULL) return;
    const uint8_t *data;
    size_t length, lengths[] = {0, 1, 14, 128, 300};
    for (int i = 0; i < 5; i++) {
        EXPECT(zs_reader_next(reader, &data, &length, &error) == ZS_OK, "record %d", i);
        EXPECT(length == lengths[i], "record %d has %zu bytes", i, length);
    }
    EXPECT(zs_reader_record_index(reader) == 5, "index");
    EXPECT(zs_reader_next(reader, &data, &length, &error) == ZS_END, "end");
    EXPECT(zs_reader_next(reader, &data, &length, &error) == ZS_END, "the end stays the end");
    zs_reader_close(reader);

    reader = zs_reader_open(vector_path("empty.tfrecord"), ZS_COMPRESSION_AUTO, &error);
    EXPECT(reader != NULL && zs_reader_next(reader, &data, &length, &error) == ZS_END, "empty file");
    zs_reader_close(reader);
}

/* ---- Examples ------------------------------------------------------------------------------------------ */

static void test_every_example_is_decoded_exactly(void) {
    json_t *records = vector_records("examples.tfrecord");
    zs_example *example = zs_example_new();
    zs_error error;
    for (size_t i = 0; i < json_array_size(records); i++) {
        json_t *record = json_array_get(records, i);
        buffer data = record_data(record);
        EXPECT(zs_example_parse(example, data.data, data.length, &error) == ZS_OK, "record %zu: %s", i, error.message);
        json_t *features = json_object_get(record, "features");
        EXPECT(example->count == json_object_size(features), "record %zu: %zu features", i, example->count);
        const char *key;
        json_t *description;
        json_object_foreach(features, key, description) {
            const zs_feature *feature = zs_example_get(example, key);
            EXPECT(feature != NULL && feature_equals_vector(feature, description), "record %zu feature %s", i, key);
        }
        char *line = canonical_line(example);
        EXPECT(strcmp(line, json_string_value(json_object_get(record, "canonical_line"))) == 0, "record %zu: %s", i, line);
        free(line);
        /* 'label' is absent from records 3, 8, 13, 18; 'tags' is always present. */
        EXPECT((zs_example_get(example, "label") == NULL) == (i % 5 == 3), "record %zu label", i);
        EXPECT(zs_example_get(example, "tags") != NULL && zs_example_get(example, "tags")->kind == ZS_FEATURE_BYTES,
               "record %zu tags", i);
        buffer_free(&data);
    }
    zs_example_free(example);
}

static void test_edge_values_survive_exactly(void) {
    zs_reader *reader = zs_reader_open(vector_path("examples.zlib.tfrecord"), ZS_COMPRESSION_AUTO, NULL);
    zs_example *examples[20];
    zs_error error;
    for (int i = 0; i < 20; i++) {
        examples[i] = zs_example_new();
        EXPECT(zs_reader_next_example(reader, examples[i], &error) == ZS_OK, "record %d: %s", i, error.message);
    }
    zs_reader_close(reader);
    EXPECT(zs_example_get(examples[16], "id")->int64s[0] == 4294967296LL, "id 16");
    EXPECT(zs_example_get(examples[17], "id")->int64s[0] == -1, "id 17");
    EXPECT(zs_example_get(examples[18], "id")->int64s[0] == INT64_MAX, "id 18");
    EXPECT(zs_example_get(examples[19], "id")->int64s[0] == INT64_MIN, "id 19");
    const zs_feature *x = zs_example_get(examples[5], "x");
    EXPECT(x->count == 3 && x->floats[0] == 0.1f && signbit(x->floats[1]) && x->floats[1] == 0.0f && x->floats[2] == 3.4028234663852886e38f,
           "x 5");
    EXPECT(zs_example_get(examples[6], "x")->floats[0] == 1.401298464324817e-45f, "the smallest subnormal");
    const zs_feature *tags = zs_example_get(examples[3], "tags");
    EXPECT(tags->count == 3 && tags->bytes[1].length == 0 && tags->bytes[2].length == 6 &&
               memcmp(tags->bytes[2].data, "\x00\xff\xfe" "bin", 6) == 0,
           "tags 3");
    tags = zs_example_get(examples[10], "tags");
    EXPECT(tags->count == 2 && tags->bytes[1].length == 200, "tags 10");
    EXPECT(zs_example_get(examples[0], "tags")->count == 0, "an empty list");
    for (int i = 0; i < 20; i++) zs_example_free(examples[i]);
}

static void test_reencoding_gives_tensorflows_bytes(void) {
    json_t *records = vector_records("examples.tfrecord");
    zs_example *example = zs_example_new(), *built = zs_example_new();
    uint8_t *out = NULL;
    size_t capacity = 0, length;
    zs_error error;
    for (size_t i = 0; i < json_array_size(records); i++) {
        json_t *record = json_array_get(records, i);
        buffer data = record_data(record);
        zs_example_parse(example, data.data, data.length, &error);
        EXPECT(zs_example_serialize(example, &out, &capacity, &length) == ZS_OK, "serialize");
        EXPECT(length == data.length && memcmp(out, data.data, length) == 0, "record %zu re-encoded", i);
        /* Built from the description, features added in reverse order: TensorFlow sorts names. */
        zs_example_clear(built);
        const char *keys[4];
        size_t key_count = 0;
        const char *key;
        json_t *description;
        json_object_foreach(json_object_get(record, "features"), key, description) keys[key_count++] = key;
        for (size_t k = key_count; k-- > 0;) {
            description = json_object_get(json_object_get(record, "features"), keys[k]);
            const char *kind = json_string_value(json_object_get(description, "kind"));
            zs_feature *feature = zs_example_add(built, keys[k],
                                                 strcmp(kind, "int64_list") == 0   ? ZS_FEATURE_INT64
                                                 : strcmp(kind, "float_list") == 0 ? ZS_FEATURE_FLOAT
                                                                                   : ZS_FEATURE_BYTES);
            json_t *value;
            size_t v;
            if (feature->kind == ZS_FEATURE_INT64) {
                json_array_foreach(json_object_get(description, "values"), v, value)
                    zs_feature_append_int64(feature, (int64_t)json_integer_value(value));
            } else if (feature->kind == ZS_FEATURE_FLOAT) {
                json_array_foreach(json_object_get(description, "f32_hex"), v, value) {
                    uint32_t bits = (uint32_t)strtoul(json_string_value(value), NULL, 16);
                    float f;
                    memcpy(&f, &bits, 4);
                    zs_feature_append_float(feature, f);
                }
            } else {
                json_array_foreach(json_object_get(description, "values_b64"), v, value) {
                    buffer bytes = base64_decode(json_string_value(value));
                    zs_feature_append_bytes(feature, bytes.data, bytes.length);
                    buffer_free(&bytes);
                }
            }
        }
        EXPECT(zs_example_serialize(built, &out, &capacity, &length) == ZS_OK, "serialize");
        EXPECT(length == data.length && memcmp(out, data.data, length) == 0, "record %zu built from its description", i);
        buffer_free(&data);
    }
    free(out);
    zs_example_free(example);
    zs_example_free(built);
}

static void test_encoding_sorts_names_by_utf8_bytes_and_empty_features(void) {
    zs_example *example = zs_example_new();
    zs_example_add(example, "\xf0\x9f\x98\x80", ZS_FEATURE_UNSET);
    zs_example_add(example, "a", ZS_FEATURE_UNSET);
    zs_example_add(example, "\xc3\xa9", ZS_FEATURE_UNSET);
    zs_example_add(example, "Z", ZS_FEATURE_UNSET);
    zs_example_add(example, "ab", ZS_FEATURE_UNSET);
    uint8_t *out = NULL;
    size_t capacity = 0, length;
    zs_example_serialize(example, &out, &capacity, &length);
    const char *keys[] = {"Z", "a", "ab", "\xc3\xa9", "\xf0\x9f\x98\x80"};
    uint8_t expected[128];
    size_t n = 2;
    for (int k = 0; k < 5; k++) {
        size_t key_length = strlen(keys[k]);
        expected[n++] = 0x0a;
        expected[n++] = (uint8_t)(key_length + 4);
        expected[n++] = 0x0a;
        expected[n++] = (uint8_t)key_length;
        memcpy(expected + n, keys[k], key_length);
        n += key_length;
        expected[n++] = 0x12;
        expected[n++] = 0x00;
    }
    expected[0] = 0x0a;
    expected[1] = (uint8_t)(n - 2);
    EXPECT(length == n && memcmp(out, expected, n) == 0, "sorted by UTF-8 bytes");

    zs_example_clear(example);
    zs_example_serialize(example, &out, &capacity, &length);
    EXPECT(length == 2 && out[0] == 0x0a && out[1] == 0x00, "an empty example is 0a 00");
    zs_example_set_floats(example, "f", NULL, 0);
    zs_example_serialize(example, &out, &capacity, &length);
    const uint8_t empty_floats[] = {0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x01, 0x66, 0x12, 0x02, 0x12, 0x00};
    EXPECT(length == sizeof empty_floats && memcmp(out, empty_floats, length) == 0, "an empty float list");
    zs_error error;
    const uint8_t unset[] = {0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x6b, 0x12, 0x00};
    EXPECT(zs_example_parse(example, unset, sizeof unset, &error) == ZS_OK, "%s", error.message);
    EXPECT(example->count == 1 && example->features[0].kind == ZS_FEATURE_UNSET && strcmp(example->features[0].name, "k") == 0,
           "an unset feature");
    EXPECT(zs_example_parse(example, "", 0, &error) == ZS_OK && example->count == 0, "empty bytes");
    /* Setting a name again replaces the feature. */
    int64_t one = 1;
    zs_example_set_string(example, "s", "text");
    zs_example_set_int64s(example, "s", &one, 1);
    EXPECT(example->count == 1 && zs_example_get(example, "s")->kind == ZS_FEATURE_INT64, "replaced");
    free(out);
    zs_example_free(example);
}

static size_t put_delimited(uint8_t *out, uint8_t field, const uint8_t *contents, size_t length) {
    size_t n = 0;
    out[n++] = (uint8_t)(field << 3 | 2);
    size_t rest = length;
    while (rest >= 0x80) {
        out[n++] = (uint8_t)(rest | 0x80);
        rest >>= 7;
    }
    out[n++] = (uint8_t)rest;
    memmove(out + n, contents, length);
    return n + length;
}

static const uint8_t UNKNOWN[] = {
    0x28, 0x96, 0x01,                   /* field 5, varint 150 */
    0x31, 1,    2,    3, 4, 5, 6, 7, 8, /* field 6, fixed64 */
    0x3d, 1,    2,    3, 4,             /* field 7, fixed32 */
    0x42, 0x02, 0xaa, 0xbb,             /* field 8, length-delimited */
    0x4b, 0x08, 0x01, 0x4c,             /* field 9, a group holding field 1 = 1 */
};

static size_t build_entry(uint8_t *out, const char *key, const uint8_t *feature, size_t feature_length) {
    uint8_t inner[512];
    size_t n = put_delimited(inner, 1, (const uint8_t *)key, strlen(key));
    memcpy(inner + n, UNKNOWN, sizeof UNKNOWN);
    n += sizeof UNKNOWN;
    n += put_delimited(inner + n, 2, feature, feature_length);
    return put_delimited(out, 1, inner, n);
}

static void test_decodes_unpacked_lists_and_skips_unknown_fields(void) {
    uint8_t floats[128], int64s[128], feature[256], features[1024], record[2048];
    size_t nf = 0, ni = 0;
    const uint8_t one[] = {0x0d, 0x00, 0x00, 0x80, 0x3f}, minus_two[] = {0x0d, 0x00, 0x00, 0x00, 0xc0};
    memcpy(floats, one, 5);
    nf = 5;
    memcpy(floats + nf, UNKNOWN, sizeof UNKNOWN);
    nf += sizeof UNKNOWN;
    memcpy(floats + nf, minus_two, 5);
    nf += 5;
    int64s[ni++] = 0x08;
    int64s[ni++] = 0x05;
    memcpy(int64s + ni, UNKNOWN, sizeof UNKNOWN);
    ni += sizeof UNKNOWN;
    int64s[ni++] = 0x08;
    for (int k = 0; k < 9; k++) int64s[ni++] = 0xff;
    int64s[ni++] = 0x01;
    size_t n = put_delimited(feature, 2, floats, nf);
    memcpy(feature + n, UNKNOWN, sizeof UNKNOWN);
    n += sizeof UNKNOWN;
    size_t nfeatures = build_entry(features, "x", feature, n);
    n = put_delimited(feature, 3, int64s, ni);
    nfeatures += build_entry(features + nfeatures, "id", feature, n);
    size_t nrecord = 0;
    memcpy(record, UNKNOWN, sizeof UNKNOWN);
    nrecord += sizeof UNKNOWN;
    nrecord += put_delimited(record + nrecord, 1, features, nfeatures);
    memcpy(record + nrecord, UNKNOWN, sizeof UNKNOWN);
    nrecord += sizeof UNKNOWN;

    zs_example *example = zs_example_new();
    zs_error error;
    EXPECT(zs_example_parse(example, record, nrecord, &error) == ZS_OK, "%s", error.message);
    const zs_feature *x = zs_example_get(example, "x"), *id = zs_example_get(example, "id");
    EXPECT(x && x->kind == ZS_FEATURE_FLOAT && x->count == 2 && x->floats[0] == 1.0f && x->floats[1] == -2.0f, "x");
    EXPECT(id && id->kind == ZS_FEATURE_INT64 && id->count == 2 && id->int64s[0] == 5 && id->int64s[1] == -1, "id");
    /* A non-minimal tag (8a 00 for 0a) still counts as its field. */
    const uint8_t long_tag[] = {0x8a, 0x00, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x6b, 0x12, 0x00};
    EXPECT(zs_example_parse(example, long_tag, sizeof long_tag, &error) == ZS_OK && example->count == 1, "long tag");
    zs_example_free(example);
}

static void test_merges_repeated_fields_as_protobuf_does(void) {
    /* int64_list { value: [7] } = 1a 03 0a 01 07; [8] = 1a 03 0a 01 08; bytes_list { value: ["b"] } = 0a 03 0a 01 62 */
    uint8_t first[256], second[64], record[512], feature[32];
    size_t n1 = 0, n2 = 0;
#define ENTRY(out, n, key, ...)                                                                                        \
    do {                                                                                                               \
        const uint8_t parts_[] = {__VA_ARGS__};                                                                        \
        memcpy(feature, parts_, sizeof parts_);                                                                        \
        n += build_entry(out + n, key, feature, sizeof parts_);                                                        \
    } while (0)
    ENTRY(first, n1, "a", 0x1a, 0x03, 0x0a, 0x01, 0x07, 0x1a, 0x03, 0x0a, 0x01, 0x08);
    ENTRY(first, n1, "b", 0x1a, 0x03, 0x0a, 0x01, 0x07);
    ENTRY(first, n1, "c", 0x1a, 0x03, 0x0a, 0x01, 0x07, 0x0a, 0x03, 0x0a, 0x01, 0x62);
    ENTRY(second, n2, "b", 0x1a, 0x03, 0x0a, 0x01, 0x08);
#undef ENTRY
    size_t n = put_delimited(record, 1, first, n1);
    n += put_delimited(record + n, 1, second, n2);
    /* An entry whose value comes before its key. */
    uint8_t late_key[] = {0x0a, 0x09, 0x0a, 0x07, 0x12, 0x02, 0x1a, 0x00, 0x0a, 0x01, 0x64};
    memcpy(record + n, late_key, sizeof late_key);
    n += sizeof late_key;
    zs_example *example = zs_example_new();
    zs_error error;
    EXPECT(zs_example_parse(example, record, n, &error) == ZS_OK, "%s", error.message);
    const zs_feature *a = zs_example_get(example, "a"), *b = zs_example_get(example, "b"), *c = zs_example_get(example, "c"),
                     *d = zs_example_get(example, "d");
    EXPECT(a && a->kind == ZS_FEATURE_INT64 && a->count == 2 && a->int64s[0] == 7 && a->int64s[1] == 8,
           "the same kind twice appends");
    EXPECT(b && b->count == 1 && b->int64s[0] == 8, "a later map entry replaces an earlier one");
    EXPECT(c && c->kind == ZS_FEATURE_BYTES && c->count == 1 && c->bytes[0].data[0] == 'b', "another kind replaces");
    EXPECT(d && d->kind == ZS_FEATURE_INT64 && d->count == 0, "a key after its value");
    EXPECT(example->count == 4, "%zu features", example->count);
    zs_example_free(example);
}

static void test_malformed_records_are_rejected_with_their_offset(void) {
    struct {
        uint8_t bytes[16];
        size_t length;
        uint64_t offset;
        const char *reason;
    } cases[] = {
        {{0x0a}, 1, 1, "ends inside a varint"},
        {{0x0a, 0x05, 0x0a}, 3, 1, "runs past the end"},
        {{0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 12, 1, "longer than 10 bytes"},
        {{0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x01, 0x78, 0x12, 0x02, 0x12, 0x01}, 11, 10, "runs past the end"},
        {{0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, 0x78, 0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 0x00}, 14, 13, "not a multiple of 4"},
        {{0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0xff, 0x12, 0x00}, 9, 6, "not valid UTF-8"},
        {{0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x03, 0xed, 0xa0, 0x80, 0x12, 0x00}, 11, 6, "not valid UTF-8"},
        {{0x0c}, 1, 1, "without its start"},
        {{0x00}, 1, 0, "invalid field tag"},
        {{0x0f}, 1, 0, "invalid field tag"},
        {{0x0b, 0x08, 0x01}, 3, 3, "ends inside group 1"},
        {{0x0b, 0x14}, 2, 2, "closed as group 2"},
        {{0x09, 0x01, 0x02}, 3, 1, "inside an 8-byte field"},
        {{0x0d, 0x01}, 2, 1, "inside a 4-byte field"},
    };
    zs_example *example = zs_example_new();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        zs_error error;
        zs_status status = zs_example_parse(example, cases[i].bytes, cases[i].length, &error);
        EXPECT(status == ZS_ERR_MALFORMED_EXAMPLE, "case %zu: %s", i, zs_status_name(status));
        EXPECT(error.offset == cases[i].offset, "case %zu: offset %llu, %s", i, (unsigned long long)error.offset,
               error.message);
        EXPECT(strstr(error.message, cases[i].reason) != NULL, "case %zu: %s", i, error.message);
        EXPECT(example->count == 0, "case %zu: nothing half-decoded is left", i);
    }
    zs_example_free(example);
}

static void test_a_record_that_is_not_an_example_names_its_file_and_index(void) {
    const char *path = temp_path("mixed.tfrecord");
    zs_writer *writer = zs_writer_open(path, ZS_COMPRESSION_NONE, -1, NULL);
    zs_example *example = zs_example_new();
    int64_t one = 1;
    zs_example_set_int64s(example, "a", &one, 1);
    zs_writer_write_example(writer, example, NULL);
    zs_writer_write(writer, "\x0a\x05\x0a", 3, NULL);
    zs_writer_close(writer, NULL);
    zs_reader *reader = zs_reader_open(path, ZS_COMPRESSION_AUTO, NULL);
    zs_error error;
    EXPECT(zs_reader_next_example(reader, example, &error) == ZS_OK && example->count == 1, "first");
    EXPECT(zs_reader_next_example(reader, example, &error) == ZS_ERR_MALFORMED_EXAMPLE, "second");
    EXPECT(error.record_index == 1 && strcmp(error.path, path) == 0 && error.offset == 1, "%s", error.message);
    EXPECT(strstr(error.message, "record 1 is not a tf.train.Example") != NULL, "%s", error.message);
    zs_reader_close(reader);
    zs_example_free(example);
}

static void test_random_examples_round_trip(void) {
    zs_example *example = zs_example_new(), *decoded = zs_example_new();
    uint8_t *out = NULL, *again = NULL;
    size_t capacity = 0, again_capacity = 0, length, again_length;
    zs_error error;
    for (int round = 0; round < 2000; round++) {
        zs_example_clear(example);
        int features = (int)(next_random() % 7);
        for (int f = 0; f < features; f++) {
            char name[16];
            int name_length = (int)(next_random() % 6);
            for (int k = 0; k < name_length; k++) name[k] = "ab_Z9"[next_random() % 5];
            name[name_length] = '\0';
            zs_feature *feature = zs_example_add(example, name, (zs_feature_kind)(next_random() % 4));
            int count = (int)(next_random() % 6);
            for (int v = 0; v < count && feature->kind != ZS_FEATURE_UNSET; v++) {
                if (feature->kind == ZS_FEATURE_INT64) {
                    uint64_t bits = next_random() >> (next_random() % 64);
                    zs_feature_append_int64(feature, (int64_t)(next_random() & 1 ? bits : ~bits));
                } else if (feature->kind == ZS_FEATURE_FLOAT) {
                    uint32_t bits = (uint32_t)next_random();
                    float value;
                    memcpy(&value, &bits, 4);
                    zs_feature_append_float(feature, value);
                } else {
                    uint8_t bytes[300];
                    size_t n = next_random() % (next_random() % 8 == 0 ? 300 : 20);
                    for (size_t k = 0; k < n; k++) bytes[k] = (uint8_t)next_random();
                    zs_feature_append_bytes(feature, bytes, n);
                }
            }
        }
        zs_example_serialize(example, &out, &capacity, &length);
        EXPECT(zs_example_parse(decoded, out, length, &error) == ZS_OK, "round %d: %s", round, error.message);
        EXPECT(decoded->count == example->count, "round %d", round);
        zs_example_serialize(decoded, &again, &again_capacity, &again_length);
        EXPECT(again_length == length && memcmp(out, again, length) == 0, "round %d re-encodes identically", round);
        for (size_t f = 0; f < example->count; f++) {
            const zs_feature *a = &example->features[f], *b = zs_example_get(decoded, a->name);
            int same = b && a->kind == b->kind && a->count == b->count;
            for (size_t v = 0; same && v < a->count; v++) {
                if (a->kind == ZS_FEATURE_INT64) same = a->int64s[v] == b->int64s[v];
                else if (a->kind == ZS_FEATURE_FLOAT) same = memcmp(&a->floats[v], &b->floats[v], 4) == 0;
                else
                    same = a->bytes[v].length == b->bytes[v].length &&
                           (a->bytes[v].length == 0 || memcmp(a->bytes[v].data, b->bytes[v].data, a->bytes[v].length) == 0);
            }
            EXPECT(same, "round %d feature %s", round, a->name);
        }
    }
    free(out);
    free(again);
    zs_example_free(example);
    zs_example_free(decoded);
}

/* ---- Writing --------------------------------------------------------------------------------------------- */

static void test_uncompressed_output_is_byte_identical_to_tensorflows(void) {
    const char *names[] = {"empty.tfrecord", "raw.tfrecord", "examples.tfrecord"};
    for (int i = 0; i < 3; i++) {
        record_list records = expected_records(names[i]);
        const char *path = temp_path(names[i]);
        write_records(path, &records, ZS_COMPRESSION_NONE);
        buffer written = read_file(path), original = read_file(vector_path(names[i]));
        EXPECT(written.length == original.length && (written.length == 0 || memcmp(written.data, original.data, written.length) == 0),
               "%s", names[i]);
        /* And framed by hand from the format description. */
        size_t offset = 0;
        int same = 1;
        for (size_t r = 0; r < records.count && same; r++) {
            uint64_t length = records.records[r].length;
            uint8_t length_bytes[8];
            for (int k = 0; k < 8; k++) length_bytes[k] = (uint8_t)(length >> (8 * k));
            uint32_t length_crc = zs_mask_crc(crc32c_bitwise(length_bytes, 8));
            uint32_t data_crc = zs_mask_crc(crc32c_bitwise(records.records[r].data, length));
            same = memcmp(written.data + offset, length_bytes, 8) == 0 &&
                   memcmp(written.data + offset + 8, &length_crc, 4) == 0 &&
                   memcmp(written.data + offset + 12 + length, &data_crc, 4) == 0;
            offset += 16 + length;
        }
        EXPECT(same && offset == written.length, "%s framed by hand", names[i]);
        buffer_free(&written);
        buffer_free(&original);
        record_list_free(&records);
    }
}

static buffer compress_in_one_go(const buffer *plain, int bits) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, bits, 9, Z_DEFAULT_STRATEGY);
    buffer out = {malloc(deflateBound(&stream, plain->length) + 64), 0};
    stream.next_in = plain->data;
    stream.avail_in = (uInt)plain->length;
    stream.next_out = out.data;
    stream.avail_out = (uInt)(deflateBound(&stream, plain->length) + 64);
    deflate(&stream, Z_FINISH);
    out.length = stream.total_out;
    deflateEnd(&stream);
    return out;
}

static void test_compressed_output_is_one_standard_stream(void) {
    const char *names[] = {"examples.gz.tfrecord", "examples.zlib.tfrecord"};
    zs_compression compressions[] = {ZS_COMPRESSION_GZIP, ZS_COMPRESSION_ZLIB};
    buffer plain = read_file(vector_path("examples.tfrecord"));
    record_list records = expected_records("examples.tfrecord");
    for (int i = 0; i < 2; i++) {
        const char *path = temp_path(names[i]);
        write_records(path, &records, compressions[i]);
        read_result result = read_all(path, ZS_COMPRESSION_AUTO);
        EXPECT(result.status == ZS_END && result.compression == compressions[i] &&
                   records_equal(&result.list, &records, records.count) && result.list.count == records.count,
               "%s round trip", names[i]);
        record_list_free(&result.list);
        buffer written = read_file(path), tensorflow = read_file(vector_path(names[i]));
        buffer one_go = compress_in_one_go(&plain, compressions[i] == ZS_COMPRESSION_GZIP ? 31 : 15);
        EXPECT(written.length == one_go.length && memcmp(written.data, one_go.data, written.length) == 0,
               "%s: streaming gives zlib's one-go bytes", names[i]);
        if (one_go.length == tensorflow.length && memcmp(one_go.data, tensorflow.data, one_go.length) == 0)
            EXPECT(written.length == tensorflow.length && memcmp(written.data, tensorflow.data, written.length) == 0,
                   "%s: TensorFlow's bytes with the same zlib", names[i]);
        else
            printf("  note: this zlib (%s) compresses differently from TensorFlow's; compared with it instead\n",
                   zlibVersion());
        if (compressions[i] == ZS_COMPRESSION_GZIP)
            EXPECT(written.data[4] == 0 && written.data[5] == 0 && written.data[6] == 0 && written.data[7] == 0,
                   "no timestamp in the gzip header");
        buffer_free(&written);
        buffer_free(&tensorflow);
        buffer_free(&one_go);
    }
    buffer_free(&plain);
    record_list_free(&records);
}

static void test_random_records_round_trip_through_every_buffer_path(void) {
    for (int round = 0; round < 40; round++) {
        record_list records = {calloc(64, sizeof(buffer)), next_random() % 60};
        for (size_t r = 0; r < records.count; r++) {
            size_t size = next_random() % 8 == 0 ? next_random() % 600000 : next_random() % 300;
            records.records[r].data = malloc(size + 1);
            records.records[r].length = size;
            for (size_t k = 0; k < size; k++) records.records[r].data[k] = (uint8_t)(k * 7 + r);
        }
        zs_compression compression = (zs_compression)(round % 3);
        const char *path = temp_path("random.tfrecord");
        write_records(path, &records, compression);
        zs_reader_options options = zs_reader_default_options();
        options.buffer_size = round % 2 ? 64 : 100000;
        read_result result = read_all_with(path, &options);
        EXPECT(result.status == ZS_END, "round %d: %s", round, result.error.message);
        EXPECT(result.list.count == records.count && records_equal(&result.list, &records, records.count),
               "round %d (%s, %zu records)", round, zs_compression_name(compression), records.count);
        record_list_free(&result.list);
        record_list_free(&records);
    }
}

static void test_flush_and_errors_opening_files(void) {
    zs_error error;
    const char *path = temp_path("flush.tfrecord.gz");
    zs_writer *writer = zs_writer_open(path, ZS_COMPRESSION_GZIP, -1, &error);
    zs_writer_write(writer, "one", 3, &error);
    EXPECT(zs_writer_flush(writer, &error) == ZS_OK, "%s", error.message);
    buffer partial = read_file(path);
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    inflateInit2(&stream, 31);
    uint8_t out[64];
    stream.next_in = partial.data;
    stream.avail_in = (uInt)partial.length;
    stream.next_out = out;
    stream.avail_out = sizeof out;
    inflate(&stream, Z_SYNC_FLUSH);
    EXPECT(stream.total_out == 19 && memcmp(out + 12, "one", 3) == 0, "flushed %lu bytes", stream.total_out);
    inflateEnd(&stream);
    buffer_free(&partial);
    EXPECT(zs_writer_record_count(writer) == 1, "count");
    EXPECT(zs_writer_close(writer, &error) == ZS_OK, "%s", error.message);
    EXPECT(zs_writer_open(temp_path("no/such/dir.tfrecord"), ZS_COMPRESSION_NONE, -1, &error) == NULL &&
               error.code == ZS_ERR_IO && error.system_errno == ENOENT,
           "%s", error.message);
    EXPECT(zs_reader_open(temp_path("missing.tfrecord"), ZS_COMPRESSION_AUTO, &error) == NULL && error.code == ZS_ERR_IO &&
               strstr(error.message, "cannot open") != NULL,
           "%s", error.message);
    EXPECT(zs_writer_open(path, ZS_COMPRESSION_AUTO, -1, &error) == NULL && error.code == ZS_ERR_INVALID_ARGUMENT,
           "AUTO is for readers");
    EXPECT(zs_compression_from_name("gzip") == ZS_COMPRESSION_GZIP && zs_compression_from_name("") == ZS_COMPRESSION_NONE &&
               zs_compression_from_name("ZLIB") == ZS_COMPRESSION_ZLIB && zs_compression_from_name("snappy") == -2,
           "names");
}

static void test_concatenated_gzip_members_and_trailing_garbage(void) {
    record_list records = expected_records("raw.tfrecord");
    record_list first = {records.records, 2}, second = {records.records + 2, records.count - 2};
    write_records(temp_path("a.gz"), &first, ZS_COMPRESSION_GZIP);
    write_records(temp_path("b.gz"), &second, ZS_COMPRESSION_GZIP);
    buffer a = read_file(temp_path("a.gz")), b = read_file(temp_path("b.gz"));
    buffer both = {malloc(a.length + b.length + 8), a.length + b.length};
    memcpy(both.data, a.data, a.length);
    memcpy(both.data + a.length, b.data, b.length);
    write_file(temp_path("both.gz"), both.data, both.length);
    read_result result = read_all(temp_path("both.gz"), ZS_COMPRESSION_AUTO);
    EXPECT(result.status == ZS_END && result.list.count == records.count && records_equal(&result.list, &records, records.count),
           "two members: %s", result.error.message);
    record_list_free(&result.list);
    memcpy(both.data + a.length, "garbage!", 8);
    write_file(temp_path("tail.gz"), both.data, a.length + 8);
    result = read_all(temp_path("tail.gz"), ZS_COMPRESSION_AUTO);
    EXPECT(result.status == ZS_ERR_COMPRESSED_STREAM && result.list.count == 2 && result.error.record_index == 2,
           "garbage: %s", result.error.message);
    record_list_free(&result.list);
    buffer_free(&a);
    buffer_free(&b);
    buffer_free(&both);
    record_list_free(&records);
}

/* ---- Damage ------------------------------------------------------------------------------------------------ */

static void test_corrupt_file_reports_the_data_crc_error_at_the_right_record(void) {
    json_t *described = vector_file("corrupt.tfrecord");
    const char *path = vector_path("corrupt.tfrecord");
    read_result result = read_all(path, ZS_COMPRESSION_AUTO);
    record_list expected = expected_records("examples.tfrecord");
    int64_t index = json_integer_value(json_object_get(described, "corrupt_record_index"));
    EXPECT(result.status == ZS_ERR_CORRUPT_DATA, "%s", zs_status_name(result.status));
    EXPECT((int64_t)result.list.count == index && index == 7 &&
               (int64_t)result.list.count == json_integer_value(json_object_get(described, "valid_records_before_error")),
           "%zu records before the error", result.list.count);
    EXPECT(records_equal(&result.list, &expected, 7), "the records before it are intact");
    EXPECT(result.error.record_index == 7 && strcmp(result.error.path, path) == 0, "%s", result.error.message);
    EXPECT(result.error.offset == (uint64_t)json_integer_value(json_object_get(described, "corrupt_record_offset")) + 12 &&
               result.error.offset == 625,
           "offset %llu", (unsigned long long)result.error.offset);
    EXPECT(strstr(result.error.message, "record 7") && strstr(result.error.message, "CRC32C") &&
               strstr(result.error.message, "the 7 records before it are intact"),
           "%s", result.error.message);
    record_list_free(&result.list);
    record_list_free(&expected);

    /* Never a silent skip: the reader keeps failing. */
    zs_reader *reader = zs_reader_open(path, ZS_COMPRESSION_AUTO, NULL);
    const uint8_t *data;
    size_t length;
    zs_error error;
    zs_status status;
    while ((status = zs_reader_next(reader, &data, &length, &error)) == ZS_OK) {
    }
    for (int again = 0; again < 2; again++)
        EXPECT(zs_reader_next(reader, &data, &length, &error) == ZS_ERR_CORRUPT_DATA && error.record_index == 7, "again");
    zs_reader_close(reader);
}

static void test_corrupt_length_is_reported_at_the_right_record(void) {
    buffer data = read_file(vector_path("examples.tfrecord"));
    json_t *record = json_array_get(vector_records("examples.tfrecord"), 3);
    size_t offset = (size_t)json_integer_value(json_object_get(record, "offset"));
    data.data[offset + 1] ^= 0x04;
    write_file(temp_path("bad-length.tfrecord"), data.data, data.length);
    read_result result = read_all(temp_path("bad-length.tfrecord"), ZS_COMPRESSION_AUTO);
    EXPECT(result.status == ZS_ERR_CORRUPT_LENGTH && result.list.count == 3 && result.error.record_index == 3 &&
               result.error.offset == offset,
           "%s", result.error.message);
    EXPECT(strstr(result.error.message, "length header of record 3") && strstr(result.error.message, "compression"), "%s",
           result.error.message);
    record_list_free(&result.list);
    buffer_free(&data);
}

static void test_a_corrupt_byte_anywhere_is_detected_at_the_right_record(void) {
    const char *texts[] = {"", "a", "hello tfrecord", "0123456789012345678901234567890123456789"};
    record_list records = {calloc(4, sizeof(buffer)), 4};
    for (int i = 0; i < 4; i++) {
        records.records[i].length = strlen(texts[i]);
        records.records[i].data = (uint8_t *)strdup(texts[i]);
    }
    const char *clean = temp_path("clean.tfrecord");
    write_records(clean, &records, ZS_COMPRESSION_NONE);
    buffer data = read_file(clean);
    size_t starts[4], offset = 0;
    for (int i = 0; i < 4; i++) {
        starts[i] = offset;
        offset += 16 + records.records[i].length;
    }
    const char *path = temp_path("flipped.tfrecord");
    const uint8_t flips[] = {0x01, 0x80, 0xff};
    for (size_t position = 0; position < data.length; position++) {
        for (int f = 0; f < 3; f++) {
            data.data[position] ^= flips[f];
            write_file(path, data.data, data.length);
            data.data[position] ^= flips[f];
            read_result result = read_all(path, ZS_COMPRESSION_NONE);
            size_t index = 0;
            while (index + 1 < 4 && starts[index + 1] <= position) index++;
            int in_header = position - starts[index] < 12;
            EXPECT(result.status != ZS_END, "flip %#x at byte %zu went unnoticed", flips[f], position);
            EXPECT(result.list.count == index && records_equal(&result.list, &records, index) &&
                       result.error.record_index == (int64_t)index,
                   "flip at %zu: %s", position, result.error.message);
            EXPECT(in_header ? (result.status == ZS_ERR_CORRUPT_LENGTH || result.status == ZS_ERR_RECORD_TOO_LARGE ||
                                result.status == ZS_ERR_TRUNCATED)
                             : result.status == ZS_ERR_CORRUPT_DATA,
                   "flip at %zu: %s", position, zs_status_name(result.status));
            record_list_free(&result.list);
        }
    }
    /* Compressed: whatever byte is damaged, the records never come back changed or silently fewer. */
    for (int c = 1; c <= 2; c++) {
        write_records(clean, &records, (zs_compression)c);
        buffer compressed = read_file(clean);
        size_t noticed = 0;
        for (size_t position = 0; position < compressed.length; position++) {
            compressed.data[position] ^= 0x01;
            write_file(path, compressed.data, compressed.length);
            compressed.data[position] ^= 0x01;
            read_result result = read_all(path, (zs_compression)c);
            EXPECT(records_equal(&result.list, &records, result.list.count), "%s flip at %zu changed a record",
                   zs_compression_name((zs_compression)c), position);
            if (result.status == ZS_END)
                EXPECT(result.list.count == records.count, "%s flip at %zu lost records silently",
                       zs_compression_name((zs_compression)c), position);
            else
                noticed++;
            record_list_free(&result.list);
        }
        EXPECT(noticed + 10 >= compressed.length, "%zu of %zu noticed", noticed, compressed.length);
        buffer_free(&compressed);
    }
    buffer_free(&data);
    record_list_free(&records);
}

static void test_every_truncation_is_reported(void) {
    buffer data = read_file(vector_path("examples.tfrecord"));
    json_t *records = vector_records("examples.tfrecord");
    record_list expected = expected_records("examples.tfrecord");
    const char *path = temp_path("cut.tfrecord");
    for (size_t kept = 0; kept < data.length; kept++) {
        write_file(path, data.data, kept);
        size_t index = 0;
        while (index + 1 < json_array_size(records) &&
               (size_t)json_integer_value(json_object_get(json_array_get(records, index + 1), "offset")) <= kept)
            index++;
        size_t start = (size_t)json_integer_value(json_object_get(json_array_get(records, index), "offset"));
        size_t full = 16 + (size_t)json_integer_value(json_object_get(json_array_get(records, index), "length"));
        read_result result = read_all(path, ZS_COMPRESSION_NONE);
        if (kept == start) {
            /* A cut exactly between records is a shorter, valid file: the format cannot tell. */
            EXPECT(result.status == ZS_END && result.list.count == index, "clean cut at %zu", kept);
        } else {
            size_t cut = kept - start;
            EXPECT(result.status == ZS_ERR_TRUNCATED && result.list.count == index && result.error.record_index == (int64_t)index &&
                       result.error.offset == start && records_equal(&result.list, &expected, index),
                   "cut at %zu: %s", kept, result.error.message);
            char wanted[128];
            snprintf(wanted, sizeof wanted, "ends after %zu of its %zu bytes", cut, cut < 12 ? (size_t)12 : full);
            EXPECT(strstr(result.error.message, wanted) != NULL, "cut at %zu: %s", kept, result.error.message);
        }
        record_list_free(&result.list);
    }
    const char *names[] = {"examples.gz.tfrecord", "examples.zlib.tfrecord"};
    for (int n = 0; n < 2; n++) {
        buffer compressed = read_file(vector_path(names[n]));
        for (size_t kept = 0; kept < compressed.length; kept++) {
            write_file(path, compressed.data, kept);
            read_result result = read_all(path, (zs_compression)(n + 1));
            EXPECT((result.status == ZS_ERR_COMPRESSED_STREAM || result.status == ZS_ERR_TRUNCATED) &&
                       records_equal(&result.list, &expected, result.list.count) &&
                       result.error.record_index == (int64_t)result.list.count,
                   "%s cut at %zu: %s", names[n], kept, zs_status_name(result.status));
            record_list_free(&result.list);
        }
        buffer_free(&compressed);
    }
    record_list_free(&expected);
    buffer_free(&data);
}

static void test_wrong_compression_lookalikes_and_limits(void) {
    read_result result = read_all(vector_path("examples.gz.tfrecord"), ZS_COMPRESSION_NONE);
    EXPECT(result.status == ZS_ERR_CORRUPT_LENGTH && result.error.record_index == 0 && result.error.offset == 0, "gzip as plain");
    record_list_free(&result.list);
    result = read_all(vector_path("examples.tfrecord"), ZS_COMPRESSION_GZIP);
    EXPECT(result.status == ZS_ERR_COMPRESSED_STREAM && result.error.record_index == 0 &&
               strstr(result.error.message, "GZIP") != NULL,
           "plain as gzip: %s", result.error.message);
    record_list_free(&result.list);

    /* A first record of 376 bytes starts 78 01 (a valid zlib header); 35615 bytes start 1f 8b. */
    size_t lengths[] = {376, 35615, 0x9c78};
    for (int i = 0; i < 3; i++) {
        record_list records = {calloc(2, sizeof(buffer)), 2};
        records.records[0].length = lengths[i];
        records.records[0].data = calloc(lengths[i], 1);
        records.records[1].length = 4;
        records.records[1].data = (uint8_t *)strdup("tail");
        write_records(temp_path("lookalike.tfrecord"), &records, ZS_COMPRESSION_NONE);
        result = read_all(temp_path("lookalike.tfrecord"), ZS_COMPRESSION_AUTO);
        EXPECT(result.status == ZS_END && result.compression == ZS_COMPRESSION_NONE && result.list.count == 2 &&
                   records_equal(&result.list, &records, 2),
               "first record of %zu bytes", lengths[i]);
        record_list_free(&result.list);
        record_list_free(&records);
    }
    EXPECT(zs_detect_compression("\x1f\x8b", 2) == ZS_COMPRESSION_GZIP && zs_detect_compression("\x78\x9c", 2) == ZS_COMPRESSION_ZLIB &&
               zs_detect_compression("", 0) == ZS_COMPRESSION_NONE,
           "magic");

    /* A header announcing 2^40 bytes, with a valid CRC: only the limit stands in the way. */
    uint8_t header[12] = {0, 0, 0, 0, 0, 1, 0, 0};
    uint32_t crc = zs_mask_crc(zs_crc32c(0, header, 8));
    memcpy(header + 8, &crc, 4);
    write_file(temp_path("huge.tfrecord"), header, 12);
    result = read_all(temp_path("huge.tfrecord"), ZS_COMPRESSION_AUTO);
    EXPECT(result.status == ZS_ERR_RECORD_TOO_LARGE && result.error.record_index == 0 &&
               strstr(result.error.message, "max_record_length") != NULL,
           "%s", result.error.message);
    record_list_free(&result.list);
    record_list limited = {calloc(3, sizeof(buffer)), 3};
    size_t sizes[] = {10, 100, 101};
    for (int i = 0; i < 3; i++) {
        limited.records[i].length = sizes[i];
        limited.records[i].data = calloc(sizes[i], 1);
    }
    write_records(temp_path("limit.tfrecord"), &limited, ZS_COMPRESSION_NONE);
    zs_reader_options options = zs_reader_default_options();
    options.max_record_length = 100;
    result = read_all_with(temp_path("limit.tfrecord"), &options);
    EXPECT(result.status == ZS_ERR_RECORD_TOO_LARGE && result.list.count == 2 && result.error.record_index == 2 &&
               result.error.offset == 2 * 16 + 110,
           "%s", result.error.message);
    record_list_free(&result.list);
    record_list_free(&limited);
}

/* ---- Shards -------------------------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *status, int flag, struct FTW *ftw) {
    (void)status;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void make_clean_dir(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(path, 0755);
}

static void test_shard_names_and_reading_every_shard_in_order(void) {
    char name[128];
    EXPECT(zs_shard_file_name(name, sizeof name, "data", 2, 4, ZS_COMPRESSION_GZIP) > 0 &&
               strcmp(name, "data-00002-of-00004.tfrecord.gz") == 0,
           "%s", name);
    EXPECT(zs_shard_file_name(name, sizeof name, "train", 3, 123456, ZS_COMPRESSION_ZLIB) > 0 &&
               strcmp(name, "train-00003-of-123456.tfrecord.zlib") == 0,
           "%s", name);
    EXPECT(zs_shard_file_name(name, sizeof name, "data", 4, 4, ZS_COMPRESSION_NONE) == -1, "index beyond the count");
    EXPECT(zs_shard_file_name(name, 10, "data", 0, 1, ZS_COMPRESSION_NONE) == -1, "too small a buffer");

    const char *directory = temp_path("artifact");
    make_clean_dir(directory);
    zs_compression compressions[] = {ZS_COMPRESSION_GZIP, ZS_COMPRESSION_NONE, ZS_COMPRESSION_ZLIB};
    for (int shard = 0; shard < 3; shard++) {
        char path[PATH_MAX * 2];
        zs_shard_file_name(name, sizeof name, "data", shard, 3, compressions[shard]);
        snprintf(path, sizeof path, "%s/%s", directory, name);
        zs_writer *writer = zs_writer_open(path, compressions[shard], -1, NULL);
        for (int i = 0; i <= shard; i++) {
            char text[64];
            int length = snprintf(text, sizeof text, "shard %d record %d", shard, i);
            zs_writer_write(writer, text, (size_t)length, NULL);
        }
        zs_writer_close(writer, NULL);
    }
    char other[PATH_MAX * 2];
    snprintf(other, sizeof other, "%s/README.txt", directory);
    write_file(other, "not a shard", 11);
    snprintf(other, sizeof other, "%s/other-00000-of-00001.tfrecord", directory);
    write_file(other, "", 0);
    read_result result = read_all(directory, ZS_COMPRESSION_AUTO);
    const char *expected[] = {"shard 0 record 0", "shard 1 record 0", "shard 1 record 1",
                              "shard 2 record 0", "shard 2 record 1", "shard 2 record 2"};
    EXPECT(result.status == ZS_END && result.list.count == 6, "%s", result.error.message);
    for (size_t i = 0; i < result.list.count && i < 6; i++)
        EXPECT(result.list.records[i].length == strlen(expected[i]) &&
                   memcmp(result.list.records[i].data, expected[i], strlen(expected[i])) == 0,
               "record %zu", i);
    record_list_free(&result.list);
    zs_reader_options options = zs_reader_default_options();
    options.shard_prefix = "other";
    result = read_all_with(directory, &options);
    EXPECT(result.status == ZS_END && result.list.count == 0, "prefix other");
    record_list_free(&result.list);
}

static void test_incomplete_or_inconsistent_shard_sets_are_rejected(void) {
    struct {
        const char *names[2];
        const char *message;
    } cases[] = {
        {{NULL, NULL}, "holds no TFRecord shards"},
        {{"data-00000-of-00002.tfrecord", NULL}, "1 of 2 shards are missing (index 1)"},
        {{"data-00000-of-00002.tfrecord", "data-00001-of-00003.tfrecord"}, "remove the stale ones"},
        {{"data-00000-of-00001.tfrecord", "data-00000-of-00001.tfrecord.gz"}, "shard 0 is there twice"},
        {{"data-00002-of-00002.tfrecord", NULL}, "index beyond the shard count"},
        {{"data-00000-of-00009.tfrecord", NULL}, "(index 1, 2, 3, 4, 5, ...)"},
    };
    const char *directory = temp_path("shards");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        make_clean_dir(directory);
        for (int k = 0; k < 2 && cases[i].names[k]; k++) {
            char path[PATH_MAX * 2];
            snprintf(path, sizeof path, "%s/%s", directory, cases[i].names[k]);
            write_file(path, "", 0);
        }
        char **paths = NULL;
        size_t count = 0;
        zs_error error;
        zs_status status = zs_shard_paths(directory, "data", &paths, &count, &error);
        EXPECT(status == ZS_ERR_SHARDS && strstr(error.message, cases[i].message) != NULL, "case %zu: %s", i, error.message);
        EXPECT(zs_reader_open(directory, ZS_COMPRESSION_AUTO, &error) == NULL && error.code == ZS_ERR_SHARDS, "case %zu", i);
    }
}

static void test_sharded_writer_and_errors_naming_the_shard(void) {
    const char *directory = temp_path("written");
    make_clean_dir(directory);
    zs_error error;
    zs_sharded_writer *writer = zs_sharded_writer_open(directory, "data", 3, ZS_COMPRESSION_GZIP, &error);
    EXPECT(writer != NULL, "%s", error.message);
    zs_example *example = zs_example_new();
    for (int64_t i = 0; i < 10; i++) {
        zs_example_set_int64s(example, "id", &i, 1);
        EXPECT(zs_sharded_writer_write_example(writer, example, &error) == ZS_OK, "%s", error.message);
    }
    EXPECT(zs_sharded_writer_close(writer, &error) == ZS_OK, "%s", error.message);
    zs_reader *reader = zs_reader_open(directory, ZS_COMPRESSION_AUTO, &error);
    int64_t expected[] = {0, 3, 6, 9, 1, 4, 7, 2, 5, 8}, n = 0;
    zs_status status;
    while ((status = zs_reader_next_example(reader, example, &error)) == ZS_OK) {
        EXPECT(n < 10 && zs_example_get(example, "id")->int64s[0] == expected[n], "record %lld", (long long)n);
        n++;
    }
    EXPECT(status == ZS_END && n == 10, "%s", error.message);
    zs_reader_close(reader);
    zs_example_free(example);

    /* A damaged second shard: the error names it and the record within it. */
    const char *broken = temp_path("broken");
    make_clean_dir(broken);
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/data-00000-of-00002.tfrecord", broken);
    zs_writer *first = zs_writer_open(path, ZS_COMPRESSION_NONE, -1, NULL);
    zs_writer_write(first, "fine", 4, NULL);
    zs_writer_close(first, NULL);
    snprintf(path, sizeof path, "%s/data-00001-of-00002.tfrecord", broken);
    buffer corrupt = read_file(vector_path("corrupt.tfrecord"));
    write_file(path, corrupt.data, corrupt.length);
    buffer_free(&corrupt);
    read_result result = read_all(broken, ZS_COMPRESSION_AUTO);
    EXPECT(result.status == ZS_ERR_CORRUPT_DATA && result.list.count == 8 && result.error.record_index == 7 &&
               strcmp(result.error.path, path) == 0,
           "%s", result.error.message);
    record_list_free(&result.list);
}

/* ---- The step contract ----------------------------------------------------------------------------------------- */

static void test_request_parsing_and_the_contract_check(void) {
    const char *text =
        "{\"contract\": 1, \"config\": {\"scale\": 2.5, \"rows\": 3.0, \"name\": \"n\", \"flag\": true},"
        " \"inputs\": {\"data\": [{\"path\": \"/a\"}, {\"path\": \"\\/b\"}]}, \"outputs\": {\"examples\": {\"path\": \"/out\"}},"
        " \"seed\": 1655782605498364}";
    zs_error error;
    json_t *request = zs_parse_request(text, strlen(text), &error);
    EXPECT(request != NULL, "%s", error.message);
    if (request == NULL) return;
    EXPECT(zs_config_number(request, "scale", 0) == 2.5 && zs_config_number(request, "missing", 7) == 7, "numbers");
    EXPECT(zs_config_integer(request, "rows", 0) == 3 && zs_config_integer(request, "scale", -1) == -1, "integers");
    EXPECT(strcmp(zs_config_string(request, "name", ""), "n") == 0 && zs_config_bool(request, "flag", 0) == 1, "others");
    EXPECT(zs_input_count(request, "data") == 2 && strcmp(zs_input_path(request, "data", 1), "/b") == 0 &&
               zs_input_path(request, "data", 2) == NULL && zs_input_count(request, "nope") == 0,
           "inputs");
    EXPECT(strcmp(zs_output_path(request, "examples"), "/out") == 0 && zs_output_path(request, "nope") == NULL, "outputs");
    EXPECT(zs_seed(request) == 1655782605498364ull, "seed");
    json_decref(request);

    const char *refused[] = {"{\"contract\": 2}", "{\"contract\": 1.0}", "{\"contract\": \"1\"}", "{\"contract\": true}",
                             "{}", "[1, 2]", "not json", ""};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        request = zs_parse_request(refused[i], strlen(refused[i]), &error);
        EXPECT(request == NULL, "%s accepted", refused[i]);
        EXPECT(strstr(error.message, i < 5 ? "contract version 1" : "request") != NULL, "%s: %s", refused[i], error.message);
    }
}

/* Runs `body` in a child with stdin from `input`; returns its exit status and captured stdout/stderr. */
static int run_child(void (*body)(void), const char *input, char *out, size_t out_size, char *err, size_t err_size) {
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe)) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        close(in_pipe[1]);
        close(out_pipe[0]);
        close(err_pipe[0]);
        body();
        _exit(0);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (write(in_pipe[1], input, strlen(input)) < 0) {
    }
    close(in_pipe[1]);
    ssize_t n = read(out_pipe[0], out, out_size - 1);
    out[n > 0 ? n : 0] = '\0';
    n = read(err_pipe[0], err, err_size - 1);
    err[n > 0 ? n : 0] = '\0';
    close(out_pipe[0]);
    close(err_pipe[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void step_that_responds(void) {
    json_t *request = zs_read_request();
    zs_response *response = zs_response_new();
    zs_response_property_integer(response, "examples", "rows", 3);
    zs_response_property_string(response, "examples", "name", "t");
    zs_response_property_bool(response, "examples", "ok", 1);
    zs_response_property_number(response, "examples", "scale", zs_config_number(request, "scale", 0));
    zs_response_metric(response, "mean", 1.25);
    if (zs_response_metric(response, "bad", NAN) == 0) zs_log("NaN accepted");
    zs_log("config read");
    exit(zs_response_write(response) == 0 ? 0 : 1);
}

static void step_that_fails(void) {
    zs_read_request();
    zs_fail("asked to fail: %d", 42);
}

static void test_responses_failures_and_refused_requests(void) {
    char out[4096], err[4096];
    int status = run_child(step_that_responds, "{\"contract\": 1, \"config\": {\"scale\": 0.5}}", out, sizeof out, err,
                           sizeof err);
    EXPECT(status == 0, "exit %d, stderr %s", status, err);
    EXPECT(strcmp(out, "{\"metrics\":{\"mean\":1.25},\"outputs\":{\"examples\":{\"properties\":{\"name\":\"t\",\"ok\":true,"
                       "\"rows\":3,\"scale\":0.5}}},\"status\":\"ok\"}\n") == 0,
           "%s", out);
    EXPECT(strstr(err, "config read") != NULL && strstr(err, "NaN accepted") == NULL && strstr(err, "finite") != NULL, "%s",
           err);
    status = run_child(step_that_fails, "{\"contract\": 1}", out, sizeof out, err, sizeof err);
    EXPECT(status == 1 && strcmp(out, "{\"message\":\"asked to fail: 42\",\"status\":\"error\"}\n") == 0, "%d %s", status, out);
    EXPECT(strstr(err, "asked to fail: 42") != NULL, "%s", err);
    status = run_child(step_that_fails, "{\"contract\": 2}", out, sizeof out, err, sizeof err);
    EXPECT(status == ZS_EXIT_BAD_REQUEST && out[0] == '\0' && strstr(err, "contract version 1") && strstr(err, "contract 2"),
           "%d %s", status, err);
    status = run_child(step_that_fails, "garbage", out, sizeof out, err, sizeof err);
    EXPECT(status == ZS_EXIT_BAD_REQUEST && out[0] == '\0' && strstr(err, "not JSON"), "%d %s", status, err);
}

/* ---- Main ------------------------------------------------------------------------------------------------------- */

static int find_vectors(int argc, char **argv) {
    const char *given = argc > 1 ? argv[1] : getenv("ZENML_TFRECORD_TESTDATA");
    if (given != NULL && given[0] != '\0') {
        snprintf(vectors_dir, sizeof vectors_dir, "%s", given);
    } else {
        /* <repo>/protocol/c/tests/test_zenml_step.c -> <repo>/../shared/testdata/tfrecord */
        char source[PATH_MAX * 2];
        if (realpath(__FILE__, source) == NULL) snprintf(source, sizeof source, "%s", __FILE__);
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(source, '/');
            if (slash == NULL) break;
            *slash = '\0';
        }
        char *slash = strrchr(source, '/');
        if (slash) *slash = '\0';
        snprintf(vectors_dir, sizeof vectors_dir, "%s/shared/testdata/tfrecord", source);
    }
    char json_path[PATH_MAX * 2];
    snprintf(json_path, sizeof json_path, "%s/vectors.json", vectors_dir);
    json_error_t error;
    vectors = json_load_file(json_path, 0, &error);
    if (vectors == NULL) {
        printf("TFRecord test vectors not found or unreadable at %s (%s). They live in shared/testdata/tfrecord/, a "
               "sibling of the repository directory; check out shared/ next to the repository, pass the directory "
               "as the first argument or set ZENML_TFRECORD_TESTDATA.\n",
               json_path, error.text);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!find_vectors(argc, argv)) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(temp_dir, sizeof temp_dir, "%s/zenml-step-c-test-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(temp_dir) == NULL) {
        printf("cannot create a temporary directory in %s: %s\n0 passed, 1 failed\n", tmp ? tmp : "/tmp", strerror(errno));
        return 1;
    }
    printf("vectors: %s\nCRC-32C: %s; zlib %s\n", vectors_dir, zs_crc32c_implementation(), zlibVersion());

    RUN(test_crc32c_check_value);
    RUN(test_hardware_and_portable_crc_agree);
    RUN(test_masked_crcs_match_every_record_header);
    RUN(test_every_vector_file_is_read_exactly);
    RUN(test_the_end_stays_the_end_and_the_zero_byte_record);
    RUN(test_every_example_is_decoded_exactly);
    RUN(test_edge_values_survive_exactly);
    RUN(test_reencoding_gives_tensorflows_bytes);
    RUN(test_encoding_sorts_names_by_utf8_bytes_and_empty_features);
    RUN(test_decodes_unpacked_lists_and_skips_unknown_fields);
    RUN(test_merges_repeated_fields_as_protobuf_does);
    RUN(test_malformed_records_are_rejected_with_their_offset);
    RUN(test_a_record_that_is_not_an_example_names_its_file_and_index);
    RUN(test_random_examples_round_trip);
    RUN(test_uncompressed_output_is_byte_identical_to_tensorflows);
    RUN(test_compressed_output_is_one_standard_stream);
    RUN(test_random_records_round_trip_through_every_buffer_path);
    RUN(test_flush_and_errors_opening_files);
    RUN(test_concatenated_gzip_members_and_trailing_garbage);
    RUN(test_corrupt_file_reports_the_data_crc_error_at_the_right_record);
    RUN(test_corrupt_length_is_reported_at_the_right_record);
    RUN(test_a_corrupt_byte_anywhere_is_detected_at_the_right_record);
    RUN(test_every_truncation_is_reported);
    RUN(test_wrong_compression_lookalikes_and_limits);
    RUN(test_shard_names_and_reading_every_shard_in_order);
    RUN(test_incomplete_or_inconsistent_shard_sets_are_rejected);
    RUN(test_sharded_writer_and_errors_naming_the_shard);
    RUN(test_request_parsing_and_the_contract_check);
    RUN(test_responses_failures_and_refused_requests);

    nftw(temp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    json_decref(vectors);
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed == 0 ? 0 : 1;
}
