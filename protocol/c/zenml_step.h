/*
 * zenml_step: a helper for writing zenml-run steps in C (C11), on libjansson and zlib.
 *
 * Two halves, usable separately:
 *
 *  1. The step contract, version 1 (protocol/SPEC.md): read the JSON request on stdin, find
 *     config values, input and output paths, and print the one JSON response on stdout.
 *
 *         json_t *request = zs_read_request();              // exits 2 unless contract == 1
 *         double scale = zs_config_number(request, "scale", 1.0);
 *         const char *in = zs_input_path(request, "data", 0);
 *         const char *out = zs_output_path(request, "examples");
 *         ...
 *         zs_response *response = zs_response_new();
 *         zs_response_property_integer(response, "examples", "rows", rows);
 *         zs_response_metric(response, "seconds", 1.5);
 *         return zs_response_write(response) == 0 ? 0 : 1;   // frees the response
 *
 *  2. TFRecord files of tf.train.Example records, byte-compatible with TensorFlow:
 *     readers that check both CRCs of every record (uncompressed, GZIP or ZLIB, detected from
 *     the first bytes; a directory reads as all of its `data-NNNNN-of-NNNNN.tfrecord[.gz]`
 *     shards in order), writers, and an Example whose features are named lists of bytes, floats
 *     or int64s.
 *
 *         zs_error error;
 *         zs_reader *reader = zs_reader_open(in, ZS_COMPRESSION_AUTO, &error);
 *         zs_sharded_writer *writer = zs_sharded_writer_open(out, "data", 1, ZS_COMPRESSION_GZIP, &error);
 *         zs_example *example = zs_example_new();
 *         zs_status status;
 *         while ((status = zs_reader_next_example(reader, example, &error)) == ZS_OK) {
 *             const zs_feature *x = zs_example_get(example, "x");
 *             ...
 *             if (zs_sharded_writer_write_example(writer, example, &error) != ZS_OK) break;
 *         }
 *         if (status < 0) zs_fail("%s", error.message);           // e.g. a CRC mismatch, with file and record
 *
 * Build: cc -O2 main.c zenml_step.c $(pkg-config --cflags --libs jansson zlib)
 *
 * Errors: functions that can fail return a zs_status (ZS_OK, ZS_END at the end of the records,
 * or a negative ZS_ERR_* code) or NULL, and fill the zs_error the caller passes (which may be
 * NULL) with the code, a message saying what happened and what to do, the file and the 0-based
 * record index. A reader never returns bytes that failed a check: after an error it returns
 * the same error again. Not thread-safe per object; separate objects may be used from
 * separate threads.
 */

#ifndef ZENML_STEP_H
#define ZENML_STEP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ------------------------------------------------------------------------------------ */

typedef enum zs_status {
    ZS_OK = 0,
    /** Not an error: there are no more records. */
    ZS_END = 1,
    /** A system call failed (see zs_error.system_errno): a missing file, a full disk. */
    ZS_ERR_IO = -1,
    /** The CRC of a record's length header does not match; it and every later record are unreadable. */
    ZS_ERR_CORRUPT_LENGTH = -2,
    /** The CRC of a record's data does not match (its length header was intact). */
    ZS_ERR_CORRUPT_DATA = -3,
    /** The file ends inside a record. */
    ZS_ERR_TRUNCATED = -4,
    /** A record announces more bytes than the reader's max_record_length. */
    ZS_ERR_RECORD_TOO_LARGE = -5,
    /** The GZIP or ZLIB stream is damaged or ends early. */
    ZS_ERR_COMPRESSED_STREAM = -6,
    /** A record is intact but not a serialized tf.train.Example. */
    ZS_ERR_MALFORMED_EXAMPLE = -7,
    /** Out of memory. */
    ZS_ERR_NO_MEMORY = -8,
    /** A writer was used after it was closed or after an earlier write failed. */
    ZS_ERR_CLOSED = -9,
    /** A bad argument: an unknown compression, an int64 out of range, a NULL pointer... */
    ZS_ERR_INVALID_ARGUMENT = -10,
    /** An artifact directory's shards are missing or do not form one complete set. */
    ZS_ERR_SHARDS = -11,
    /** A float does not fit in a float32, or a value does not fit its feature. */
    ZS_ERR_VALUE = -12,
} zs_status;

/** What went wrong, filled by the function that failed. */
typedef struct zs_error {
    zs_status code;
    /** A sentence for people: what happened, where, and what to do. */
    char message[1024];
    /** The file (or directory) concerned, or "". */
    char path[4096];
    /** The 0-based index of the record concerned within `path` (also the number of intact
     *  records before it), or -1. */
    int64_t record_index;
    /** A byte offset in the uncompressed record stream (where the bad record or its data starts;
     *  for ZS_ERR_MALFORMED_EXAMPLE, within the record), or 0. */
    uint64_t offset;
    /** errno for ZS_ERR_IO, else 0. */
    int system_errno;
} zs_error;

/** The name of a status: "ZS_ERR_CORRUPT_DATA", ... */
const char *zs_status_name(zs_status status);

/* ---- The step contract ------------------------------------------------------------------------- */

/** The step contract version this helper speaks. */
#define ZS_CONTRACT_VERSION 1
/** The exit code for a request this helper cannot use (bad JSON, another contract version). */
#define ZS_EXIT_BAD_REQUEST 2

/** Prints a line to stderr, the step's log (printf-style; a newline is added). */
void zs_log(const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/**
 * Reads the request (one JSON object) from stdin. Exits with a message on stderr and exit code
 * 2 when stdin is not a JSON object or the request's `contract` is not the integer 1: a step must
 * never guess at a contract it does not know. Free it with json_decref (or let the process end).
 */
json_t *zs_read_request(void);

/**
 * Parses and checks a request from text. Returns NULL, with the reason in `error`
 * (ZS_ERR_INVALID_ARGUMENT), instead of exiting.
 */
json_t *zs_parse_request(const char *text, size_t length, zs_error *error);

/** The config value of `key`, or NULL when the request has none. */
json_t *zs_config(const json_t *request, const char *key);
/** Config values with a fallback used when the key is absent or of another type. */
double zs_config_number(const json_t *request, const char *key, double fallback);
int64_t zs_config_integer(const json_t *request, const char *key, int64_t fallback);
const char *zs_config_string(const json_t *request, const char *key, const char *fallback);
int zs_config_bool(const json_t *request, const char *key, int fallback);

/** The number of artifacts wired to input `name` (0 when unwired or unknown). */
size_t zs_input_count(const json_t *request, const char *name);
/** The path of artifact `index` of input `name`, or NULL. */
const char *zs_input_path(const json_t *request, const char *name, size_t index);
/** The path of output `name`'s directory, or NULL when the step has no such output. */
const char *zs_output_path(const json_t *request, const char *name);
/** The request's seed (0 <= seed < 2^52): use it for all randomness. */
uint64_t zs_seed(const json_t *request);

/** A response being built. */
typedef struct zs_response zs_response;

zs_response *zs_response_new(void);
/** Properties recorded with an output artifact (only declared outputs may appear). Return 0, or -1
 *  (with a message on stderr) for a NULL argument or, for numbers, a non-finite value. */
int zs_response_property_string(zs_response *response, const char *output, const char *key, const char *value);
int zs_response_property_integer(zs_response *response, const char *output, const char *key, int64_t value);
int zs_response_property_number(zs_response *response, const char *output, const char *key, double value);
int zs_response_property_bool(zs_response *response, const char *output, const char *key, int value);
/** A metric recorded with the execution: a finite number (else -1). */
int zs_response_metric(zs_response *response, const char *name, double value);
/** A short text for people. */
int zs_response_message(zs_response *response, const char *message);
/** Prints the response ({"status": "ok", ...}) as one line on stdout and frees it; 0 on success. */
int zs_response_write(zs_response *response);
/** Frees a response without printing it. */
void zs_response_free(zs_response *response);

/** Reports a failure: logs the message, prints {"status": "error", "message": ...} and exits 1. */
void zs_fail(const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

/* ---- CRC-32C --------------------------------------------------------------------------------- */

/**
 * Extends `crc`, the CRC-32C (Castagnoli) of some preceding bytes (0 for none), over `length`
 * more bytes: zs_crc32c(0, "123456789", 9) == 0xE3069283. Uses the SSE4.2 crc32 instruction on
 * x86-64 or the ARMv8 CRC32 extension on aarch64 when the CPU has it (detected at run time; the
 * environment variable ZS_CRC32C_PORTABLE turns it off), slicing-by-8 tables otherwise.
 */
uint32_t zs_crc32c(uint32_t crc, const void *data, size_t length);
/** The same function on slicing-by-8 tables only. */
uint32_t zs_crc32c_portable(uint32_t crc, const void *data, size_t length);
/** "SSE4.2", "ARMv8 CRC32" or "portable (slicing-by-8)": what zs_crc32c uses on this CPU. */
const char *zs_crc32c_implementation(void);
/** TensorFlow's masked CRC, as TFRecord framing stores it: ((crc >> 15) | (crc << 17)) + 0xA282EAD8. */
uint32_t zs_mask_crc(uint32_t crc);
uint32_t zs_unmask_crc(uint32_t masked);

/* ---- TFRecord files ---------------------------------------------------------------------------- */

typedef enum zs_compression {
    /** Readers only: detect the compression from the file's first bytes. */
    ZS_COMPRESSION_AUTO = -1,
    ZS_COMPRESSION_NONE = 0,
    /** One gzip stream over the whole file, as TensorFlow's compression_type="GZIP". */
    ZS_COMPRESSION_GZIP = 1,
    /** One zlib stream over the whole file, as TensorFlow's compression_type="ZLIB". */
    ZS_COMPRESSION_ZLIB = 2,
} zs_compression;

/** "NONE", "GZIP", "ZLIB" or "AUTO". */
const char *zs_compression_name(zs_compression compression);
/** Parses "", "NONE", "GZIP", "ZLIB" (any case); -2 for anything else. */
int zs_compression_from_name(const char *name);
/**
 * Guesses a file's compression from its first bytes (12 are enough): a valid first TFRecord
 * header means NONE (even when it looks like a compression header), then 1f 8b means GZIP and a
 * valid zlib header ZLIB; anything else reads as NONE.
 */
zs_compression zs_detect_compression(const void *prefix, size_t length);

/** The default largest record a reader accepts (1 GiB) and the default buffer size (256 KiB). */
#define ZS_DEFAULT_MAX_RECORD_LENGTH ((uint64_t)1 << 30)
#define ZS_DEFAULT_BUFFER_SIZE ((size_t)256 << 10)

typedef struct zs_reader_options {
    /** ZS_COMPRESSION_AUTO (detect) or a compression. */
    zs_compression compression;
    /** The largest record accepted; a longer one is ZS_ERR_RECORD_TOO_LARGE before any allocation. */
    uint64_t max_record_length;
    /** The size of the read buffers. */
    size_t buffer_size;
    /** With a directory path: the shard name prefix ("data" when NULL). */
    const char *shard_prefix;
} zs_reader_options;

/** The defaults: AUTO, 1 GiB, 256 KiB, "data". */
zs_reader_options zs_reader_default_options(void);

typedef struct zs_reader zs_reader;

/**
 * Opens a TFRecord file, or an artifact directory: then every shard
 * (`<prefix>-NNNNN-of-NNNNN.tfrecord[.gz|.zlib]`, checked to form one complete set) is read in
 * shard order. Returns NULL on failure.
 */
zs_reader *zs_reader_open(const char *path, zs_compression compression, zs_error *error);
zs_reader *zs_reader_open_with(const char *path, const zs_reader_options *options, zs_error *error);

/**
 * The next record: ZS_OK with `*data`/`*length` set (the bytes stay valid until the next call on
 * this reader), ZS_END after the last record, or an error (then again on every later call).
 */
zs_status zs_reader_next(zs_reader *reader, const uint8_t **data, size_t *length, zs_error *error);

/** The file being read now. */
const char *zs_reader_path(const zs_reader *reader);
/** The compression of the file being read now. */
zs_compression zs_reader_compression(const zs_reader *reader);
/** The index the next record of the current file will have: the number read from it so far. */
int64_t zs_reader_record_index(const zs_reader *reader);
void zs_reader_close(zs_reader *reader);

typedef struct zs_writer zs_writer;

/**
 * Creates (or truncates) a TFRecord file. Uncompressed output is byte-for-byte TensorFlow's;
 * GZIP and ZLIB use TensorFlow's zlib settings (memLevel 9, default level 6 when `level` < 0).
 */
zs_writer *zs_writer_open(const char *path, zs_compression compression, int level, zs_error *error);
/** Appends one record. */
zs_status zs_writer_write(zs_writer *writer, const void *data, size_t length, zs_error *error);
/** Hands what was written to the operating system (a compressed stream is sync-flushed). */
zs_status zs_writer_flush(zs_writer *writer, zs_error *error);
/** Writes the rest, ends the compressed stream, closes the file and frees the writer. */
zs_status zs_writer_close(zs_writer *writer, zs_error *error);
/** The number of records written so far. */
uint64_t zs_writer_record_count(const zs_writer *writer);

/* ---- tf.train.Example ---------------------------------------------------------------------------- */

typedef enum zs_feature_kind {
    /** A Feature message with no kind set: present, but holding no list. */
    ZS_FEATURE_UNSET = 0,
    ZS_FEATURE_BYTES = 1,
    ZS_FEATURE_FLOAT = 2,
    ZS_FEATURE_INT64 = 3,
} zs_feature_kind;

typedef struct zs_bytes {
    const uint8_t *data;
    size_t length;
} zs_bytes;

/** One named feature. Read the fields; change it only through the functions below. */
typedef struct zs_feature {
    /** The name: UTF-8, NUL-terminated (`name_length` bytes before the NUL). */
    char *name;
    size_t name_length;
    zs_feature_kind kind;
    /** The number of values. */
    size_t count;
    /** The values, by kind (the others are NULL or stale). */
    float *floats;
    int64_t *int64s;
    zs_bytes *bytes;
    /* Private: capacities and the storage of bytes values. */
    size_t name_capacity, values_capacity, storage_length, storage_capacity;
    uint8_t *storage;
} zs_feature;

/** An Example: features in insertion (or, when decoded, wire) order; names are unique. */
typedef struct zs_example {
    zs_feature *features;
    size_t count;
    size_t capacity;
} zs_example;

zs_example *zs_example_new(void);
void zs_example_free(zs_example *example);
/** Removes every feature, keeping memory for reuse. */
void zs_example_clear(zs_example *example);
/** The feature named `name`, or NULL. */
const zs_feature *zs_example_get(const zs_example *example, const char *name);

/**
 * Adds a feature (or empties the existing one of that name) of `kind` with no values and returns
 * it, for zs_feature_append_*; NULL when out of memory.
 */
zs_feature *zs_example_add(zs_example *example, const char *name, zs_feature_kind kind);
zs_status zs_feature_append_float(zs_feature *feature, float value);
zs_status zs_feature_append_int64(zs_feature *feature, int64_t value);
zs_status zs_feature_append_bytes(zs_feature *feature, const void *data, size_t length);

/** Sets a whole feature at once (replacing any of the same name). */
zs_status zs_example_set_floats(zs_example *example, const char *name, const float *values, size_t count);
zs_status zs_example_set_int64s(zs_example *example, const char *name, const int64_t *values, size_t count);
zs_status zs_example_set_bytes(zs_example *example, const char *name, const zs_bytes *values, size_t count);
/** A bytes feature holding one NUL-terminated string. */
zs_status zs_example_set_string(zs_example *example, const char *name, const char *text);

/**
 * Decodes a serialized tf.train.Example into `example` (cleared first). Any valid encoding is
 * accepted: names in any order, packed or unpacked lists, unknown fields (skipped), repeated
 * fields (merged as protobuf does). Bytes values are copied: they outlive `data`.
 */
zs_status zs_example_parse(zs_example *example, const void *data, size_t length, zs_error *error);

/**
 * Serializes as TensorFlow does (SerializeToString(deterministic=True)): names sorted by UTF-8
 * bytes, float and int64 lists packed. Writes into `*buffer` (grown with realloc as needed;
 * `*capacity` is its size; both may start as NULL/0) and sets `*length`.
 */
zs_status zs_example_serialize(const zs_example *example, uint8_t **buffer, size_t *capacity, size_t *length);

/** The next record decoded into `example` (ZS_ERR_MALFORMED_EXAMPLE names the file and record). */
zs_status zs_reader_next_example(zs_reader *reader, zs_example *example, zs_error *error);
/** Serializes `example` and appends it. */
zs_status zs_writer_write_example(zs_writer *writer, const zs_example *example, zs_error *error);

/* ---- Sharded artifacts ------------------------------------------------------------------------- */

/**
 * Writes the name of shard `index` of `count` into `out`:
 * ("data", 2, 4, GZIP) -> "data-00002-of-00004.tfrecord.gz". Returns the name's length, or -1 if
 * it does not fit or the index is not in [0, count).
 */
int zs_shard_file_name(char *out, size_t capacity, const char *prefix, int index, int count,
                       zs_compression compression);

/**
 * The shard files of `directory` in shard order, checked to form one complete set. On success
 * `*paths` is a malloc'ed array of `*count` malloc'ed paths (free with zs_free_paths).
 */
zs_status zs_shard_paths(const char *directory, const char *prefix, char ***paths, size_t *count, zs_error *error);
void zs_free_paths(char **paths, size_t count);

typedef struct zs_sharded_writer zs_sharded_writer;

/**
 * Creates `shards` shard files in `directory` (which must exist). Record i goes to shard
 * i % shards; readers read shard after shard, so with several shards the read order differs from
 * the write order.
 */
zs_sharded_writer *zs_sharded_writer_open(const char *directory, const char *prefix, int shards,
                                          zs_compression compression, zs_error *error);
zs_status zs_sharded_writer_write(zs_sharded_writer *writer, const void *data, size_t length, zs_error *error);
zs_status zs_sharded_writer_write_example(zs_sharded_writer *writer, const zs_example *example, zs_error *error);
/** Closes every shard and frees the writer; the first error is reported. */
zs_status zs_sharded_writer_close(zs_sharded_writer *writer, zs_error *error);

#ifdef __cplusplus
}
#endif

#endif /* ZENML_STEP_H */
