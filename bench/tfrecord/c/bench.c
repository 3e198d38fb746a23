/*
 * TFRecord benchmark of the C step SDK (protocol/c/zenml_step.c); see bench/tfrecord/README.md.
 *
 *   bench write DIR N   build and serialize N examples, write DIR/data.tfrecord and DIR/data.tfrecord.gz
 *   bench read DIR N    read both files (framing, both CRCs checked), then decode every example
 *   bench crc           CRC-32C over 1 GiB (a 64 MiB buffer, 16 times)
 *   bench zlib DIR      zlib alone at TFRecord's settings over DIR/data.tfrecord: the GZIP baseline
 *
 * Each prints "c<TAB>metric<TAB>value" lines. Example i holds floats [i/2, -i/4], id [i] and payload
 * [16 bytes: i and i*0x9E3779B97F4A7C15, little-endian], as in the Swift and Python runners, so all
 * three write the same bytes.
 */

#include "../../../protocol/c/zenml_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zlib.h>

/* The last two now() calls' wall-clock and process CPU times: a rate reported right after the end of a
 * timed interval is also reported per CPU second ("<metric>_cpu"), which a machine shared with other
 * work moves much less than the wall-clock rate. */
static double marks[2][2];

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now(void) {
    marks[0][0] = marks[1][0];
    marks[0][1] = marks[1][1];
    marks[1][0] = seconds(CLOCK_MONOTONIC);
    marks[1][1] = seconds(CLOCK_PROCESS_CPUTIME_ID);
    return marks[1][0];
}

static int is_rate(const char *metric) {
    size_t n = strlen(metric);
    return (n > 4 && strcmp(metric + n - 4, "_rps") == 0) ||
           (n > 5 && (strcmp(metric + n - 5, "_MBps") == 0 || strcmp(metric + n - 5, "_GBps") == 0));
}

static void report(const char *metric, double value) {
    printf("c\t%s\t%.6g\n", metric, value);
    double wall = marks[1][0] - marks[0][0], cpu = marks[1][1] - marks[0][1];
    if (is_rate(metric) && cpu > 0) printf("c\t%s_cpu\t%.6g\n", metric, value * wall / cpu);
}

static double peak_rss_mb(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_maxrss / 1024.0;
}

static void die(const char *what, const zs_error *error) {
    fprintf(stderr, "bench: %s: %s\n", what, error ? error->message : "failed");
    exit(1);
}

static void fill_example(zs_example *example, int64_t i) {
    float floats[2] = {(float)i * 0.5f, -(float)i * 0.25f};
    uint8_t payload[16];
    uint64_t a = (uint64_t)i, b = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 8; k++) {
        payload[k] = (uint8_t)(a >> (8 * k));
        payload[8 + k] = (uint8_t)(b >> (8 * k));
    }
    zs_bytes value = {payload, 16};
    zs_example_clear(example);
    zs_example_set_floats(example, "floats", floats, 2);
    zs_example_set_int64s(example, "id", &i, 1);
    zs_example_set_bytes(example, "payload", &value, 1);
}

static void bench_write(const char *directory, long count) {
    zs_error error;
    /* Build and serialize every example into one arena (the "pre-serialized records"). */
    size_t capacity = (size_t)count * 96, used = 0;
    uint8_t *arena = malloc(capacity);
    size_t *ends = malloc((size_t)count * sizeof *ends);
    zs_example *example = zs_example_new();
    uint8_t *buffer = NULL;
    size_t buffer_capacity = 0, length;
    double start = now();
    for (long i = 0; i < count; i++) {
        fill_example(example, i);
        if (zs_example_serialize(example, &buffer, &buffer_capacity, &length) != ZS_OK) die("serialize", NULL);
        if (used + length > capacity) {
            capacity *= 2;
            arena = realloc(arena, capacity);
        }
        memcpy(arena + used, buffer, length);
        used += length;
        ends[i] = used;
    }
    double elapsed = now() - start;
    report("build_serialize_rps", count / elapsed);
    report("example_bytes", (double)used / count);

    const char *names[] = {"data.tfrecord", "data.tfrecord.gz"};
    const char *metrics[] = {"write_none", "write_gzip"};
    for (int c = 0; c < 2; c++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", directory, names[c]);
        start = now();
        zs_writer *writer = zs_writer_open(path, c ? ZS_COMPRESSION_GZIP : ZS_COMPRESSION_NONE, -1, &error);
        if (writer == NULL) die("open", &error);
        size_t begin = 0;
        for (long i = 0; i < count; i++) {
            if (zs_writer_write(writer, arena + begin, ends[i] - begin, &error) != ZS_OK) die("write", &error);
            begin = ends[i];
        }
        if (zs_writer_close(writer, &error) != ZS_OK) die("close", &error);
        elapsed = now() - start;
        char metric[64];
        snprintf(metric, sizeof metric, "%s_rps", metrics[c]);
        report(metric, count / elapsed);
        snprintf(metric, sizeof metric, "%s_MBps", metrics[c]);
        report(metric, (double)(used + 16 * (size_t)count) / elapsed / 1e6); /* uncompressed stream bytes */
    }
    report("write_peak_rss_MB", peak_rss_mb());
    free(buffer);
    free(arena);
    free(ends);
    zs_example_free(example);
}

static void bench_read(const char *directory, long count) {
    zs_error error;
    const char *names[] = {"data.tfrecord", "data.tfrecord.gz"};
    const char *metrics[] = {"read_none", "read_gzip"};
    for (int c = 0; c < 2; c++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", directory, names[c]);
        double start = now();
        zs_reader *reader = zs_reader_open(path, ZS_COMPRESSION_AUTO, &error);
        if (reader == NULL) die("open", &error);
        const uint8_t *data;
        size_t length, bytes = 0;
        long records = 0;
        zs_status status;
        while ((status = zs_reader_next(reader, &data, &length, &error)) == ZS_OK) {
            records++;
            bytes += length + 16;
        }
        if (status != ZS_END) die("read", &error);
        zs_reader_close(reader);
        double elapsed = now() - start;
        if (records != count) die("read: wrong record count", NULL);
        char metric[64];
        snprintf(metric, sizeof metric, "%s_rps", metrics[c]);
        report(metric, records / elapsed);
        snprintf(metric, sizeof metric, "%s_MBps", metrics[c]);
        report(metric, (double)bytes / elapsed / 1e6);
    }
    /* Read and decode every example; the sum of ids proves the work was done. */
    char path[4096];
    snprintf(path, sizeof path, "%s/data.tfrecord", directory);
    double start = now();
    zs_reader *reader = zs_reader_open(path, ZS_COMPRESSION_AUTO, &error);
    zs_example *example = zs_example_new();
    long records = 0;
    int64_t sum = 0;
    zs_status status;
    while ((status = zs_reader_next_example(reader, example, &error)) == ZS_OK) {
        const zs_feature *id = zs_example_get(example, "id");
        sum += id->int64s[0];
        records++;
    }
    if (status != ZS_END) die("decode", &error);
    double elapsed = now() - start;
    zs_reader_close(reader);
    zs_example_free(example);
    if (records != count || sum != (int64_t)count * (count - 1) / 2) die("decode: wrong content", NULL);
    report("decode_rps", records / elapsed);
    report("read_peak_rss_MB", peak_rss_mb());
}

static void bench_crc(void) {
    size_t size = (size_t)64 << 20;
    uint8_t *buffer = malloc(size);
    for (size_t i = 0; i < size; i++) buffer[i] = (uint8_t)(i * 131 + (i >> 9));
    uint32_t crc = zs_crc32c(0, buffer, size); /* warm up: pages and tables */
    double start = now();
    for (int pass = 0; pass < 16; pass++) crc = zs_crc32c(crc, buffer, size);
    double elapsed = now() - start;
    report("crc_GBps", (double)size * 16 / elapsed / 1e9);
    fprintf(stderr, "c: CRC-32C %s (%08x)\n", zs_crc32c_implementation(), crc);
    free(buffer);
}

/* zlib alone, streaming the uncompressed file through 256 KiB chunks as the writer does. */
static void bench_zlib(const char *directory) {
    char path[4096];
    snprintf(path, sizeof path, "%s/data.tfrecord", directory);
    FILE *file = fopen(path, "rb");
    if (file == NULL) die("zlib: open data.tfrecord", NULL);
    fseek(file, 0, SEEK_END);
    size_t size = (size_t)ftell(file);
    fseek(file, 0, SEEK_SET);
    uint8_t *plain = malloc(size);
    if (fread(plain, 1, size, file) != size) die("zlib: read", NULL);
    fclose(file);
    size_t chunk = 256 << 10;
    uint8_t *out = malloc(chunk);
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY);
    double start = now();
    size_t compressed = 0;
    for (size_t offset = 0; offset < size; offset += chunk) {
        size_t n = size - offset < chunk ? size - offset : chunk;
        stream.next_in = plain + offset;
        stream.avail_in = (uInt)n;
        int flush = offset + n == size ? Z_FINISH : Z_NO_FLUSH;
        do {
            stream.next_out = out;
            stream.avail_out = (uInt)chunk;
            deflate(&stream, flush);
            compressed += chunk - stream.avail_out;
        } while (stream.avail_out == 0);
    }
    double elapsed = now() - start;
    deflateEnd(&stream);
    report("zlib_deflate_MBps", (double)size / elapsed / 1e6);
    report("gzip_ratio", (double)compressed / size);
    /* Inflate back, the reading baseline. */
    uint8_t *packed = malloc(compressed + 64);
    memset(&stream, 0, sizeof stream);
    deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY);
    stream.next_in = plain;
    stream.avail_in = (uInt)size;
    stream.next_out = packed;
    stream.avail_out = (uInt)(compressed + 64);
    deflate(&stream, Z_FINISH);
    deflateEnd(&stream);
    memset(&stream, 0, sizeof stream);
    inflateInit2(&stream, 31);
    stream.next_in = packed;
    stream.avail_in = (uInt)compressed;
    start = now();
    int status;
    do {
        stream.next_out = out;
        stream.avail_out = (uInt)chunk;
        status = inflate(&stream, Z_NO_FLUSH);
    } while (status == Z_OK);
    elapsed = now() - start;
    inflateEnd(&stream);
    report("zlib_inflate_MBps", (double)size / elapsed / 1e6);
    free(plain);
    free(packed);
    free(out);
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "write") == 0) bench_write(argv[2], atol(argv[3]));
    else if (argc >= 4 && strcmp(argv[1], "read") == 0) bench_read(argv[2], atol(argv[3]));
    else if (argc >= 2 && strcmp(argv[1], "crc") == 0) bench_crc();
    else if (argc >= 3 && strcmp(argv[1], "zlib") == 0) bench_zlib(argv[2]);
    else {
        fprintf(stderr, "usage: bench write|read DIR N | crc | zlib DIR\n");
        return 2;
    }
    return 0;
}
