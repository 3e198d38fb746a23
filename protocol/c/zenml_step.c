/*
 * zenml_step: the step contract, TFRecord files and tf.train.Example for C steps.
 * See zenml_step.h for the API; the format notes are in protocol/SPEC.md and in the comments below.
 *
 * Build: cc -O2 -c zenml_step.c $(pkg-config --cflags jansson zlib)
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_CLOEXEC, strnlen on older C libraries */
#endif

#include "zenml_step.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#if defined(__x86_64__) || defined(_M_X64)
#define ZS_HAVE_SSE42_PATH 1
#include <nmmintrin.h>
#elif defined(__aarch64__)
#define ZS_HAVE_ARMV8_PATH 1
#include <arm_acle.h>
#if defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ZS_BIG_ENDIAN 1
#endif

/* ==== Errors ====================================================================================== */

const char *zs_status_name(zs_status status) {
    switch (status) {
    case ZS_OK: return "ZS_OK";
    case ZS_END: return "ZS_END";
    case ZS_ERR_IO: return "ZS_ERR_IO";
    case ZS_ERR_CORRUPT_LENGTH: return "ZS_ERR_CORRUPT_LENGTH";
    case ZS_ERR_CORRUPT_DATA: return "ZS_ERR_CORRUPT_DATA";
    case ZS_ERR_TRUNCATED: return "ZS_ERR_TRUNCATED";
    case ZS_ERR_RECORD_TOO_LARGE: return "ZS_ERR_RECORD_TOO_LARGE";
    case ZS_ERR_COMPRESSED_STREAM: return "ZS_ERR_COMPRESSED_STREAM";
    case ZS_ERR_MALFORMED_EXAMPLE: return "ZS_ERR_MALFORMED_EXAMPLE";
    case ZS_ERR_NO_MEMORY: return "ZS_ERR_NO_MEMORY";
    case ZS_ERR_CLOSED: return "ZS_ERR_CLOSED";
    case ZS_ERR_INVALID_ARGUMENT: return "ZS_ERR_INVALID_ARGUMENT";
    case ZS_ERR_SHARDS: return "ZS_ERR_SHARDS";
    case ZS_ERR_VALUE: return "ZS_ERR_VALUE";
    }
    return "ZS_ERR_UNKNOWN";
}

/* Fills `error` (when not NULL) and returns `code`. */
#if defined(__GNUC__)
__attribute__((format(printf, 7, 8)))
#endif
static zs_status set_error(zs_error *error, zs_status code, const char *path, int64_t record_index,
                           uint64_t offset, int system_errno, const char *format, ...) {
    if (error == NULL) return code;
    error->code = code;
    error->record_index = record_index;
    error->offset = offset;
    error->system_errno = system_errno;
    snprintf(error->path, sizeof error->path, "%s", path ? path : "");
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof error->message, format, arguments);
    va_end(arguments);
    return code;
}

static zs_status no_memory(zs_error *error, const char *path) {
    return set_error(error, ZS_ERR_NO_MEMORY, path, -1, 0, ENOMEM, "out of memory%s%s", path ? " with " : "",
                     path ? path : "");
}

static zs_status io_error(zs_error *error, const char *path, const char *operation, int code) {
    return set_error(error, ZS_ERR_IO, path, -1, 0, code, "cannot %s '%s': %s", operation, path, strerror(code));
}

/* "the 7 records before it are intact" */
static const char *intact_prefix(int64_t index, char *out, size_t capacity) {
    if (index == 0) return "no record before it was read";
    if (index == 1) return "the 1 record before it is intact";
    snprintf(out, capacity, "the %lld records before it are intact", (long long)index);
    return out;
}

/* ==== The step contract ============================================================================ */

void zs_log(const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
    fputc('\n', stderr);
    fflush(stderr);
}

json_t *zs_parse_request(const char *text, size_t length, zs_error *error) {
    json_error_t parse_error;
    json_t *request = json_loadb(text, length, JSON_DECODE_ANY, &parse_error);
    if (request == NULL) {
        set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "the request on stdin is not JSON (%s, line %d)",
                  parse_error.text, parse_error.line);
        return NULL;
    }
    if (!json_is_object(request)) {
        set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "the request on stdin must be a JSON object");
        json_decref(request);
        return NULL;
    }
    json_t *contract = json_object_get(request, "contract");
    if (!json_is_integer(contract) || json_integer_value(contract) != ZS_CONTRACT_VERSION) {
        char *shown = contract ? json_dumps(contract, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0,
                  "this step speaks step contract version %d, but the request has contract %s; use a zenml-run "
                  "that speaks version %d or update the step",
                  ZS_CONTRACT_VERSION, shown ? shown : "null", ZS_CONTRACT_VERSION);
        free(shown);
        json_decref(request);
        return NULL;
    }
    return request;
}

json_t *zs_read_request(void) {
    size_t capacity = 1 << 16, length = 0;
    char *text = malloc(capacity);
    if (text == NULL) {
        zs_log("error: out of memory reading the request");
        exit(ZS_EXIT_BAD_REQUEST);
    }
    size_t count;
    while ((count = fread(text + length, 1, capacity - length, stdin)) > 0) {
        length += count;
        if (length == capacity) {
            char *grown = realloc(text, capacity * 2);
            if (grown == NULL) {
                free(text);
                zs_log("error: out of memory reading the request");
                exit(ZS_EXIT_BAD_REQUEST);
            }
            text = grown;
            capacity *= 2;
        }
    }
    zs_error error;
    json_t *request = zs_parse_request(text, length, &error);
    free(text);
    if (request == NULL) {
        zs_log("error: %s", error.message);
        exit(ZS_EXIT_BAD_REQUEST);
    }
    return request;
}

json_t *zs_config(const json_t *request, const char *key) {
    return json_object_get(json_object_get(request, "config"), key);
}

double zs_config_number(const json_t *request, const char *key, double fallback) {
    json_t *value = zs_config(request, key);
    return json_is_number(value) ? json_number_value(value) : fallback;
}

int64_t zs_config_integer(const json_t *request, const char *key, int64_t fallback) {
    json_t *value = zs_config(request, key);
    if (json_is_integer(value)) return (int64_t)json_integer_value(value);
    if (json_is_real(value)) {
        /* The contract's `integer` accepts integral numbers such as 2.0. */
        double number = json_real_value(value);
        if (number == floor(number) && number >= -9223372036854775808.0 && number < 9223372036854775808.0)
            return (int64_t)number;
    }
    return fallback;
}

const char *zs_config_string(const json_t *request, const char *key, const char *fallback) {
    json_t *value = zs_config(request, key);
    return json_is_string(value) ? json_string_value(value) : fallback;
}

int zs_config_bool(const json_t *request, const char *key, int fallback) {
    json_t *value = zs_config(request, key);
    return json_is_boolean(value) ? json_is_true(value) : fallback;
}

size_t zs_input_count(const json_t *request, const char *name) {
    return json_array_size(json_object_get(json_object_get(request, "inputs"), name));
}

const char *zs_input_path(const json_t *request, const char *name, size_t index) {
    json_t *artifacts = json_object_get(json_object_get(request, "inputs"), name);
    return json_string_value(json_object_get(json_array_get(artifacts, index), "path"));
}

const char *zs_output_path(const json_t *request, const char *name) {
    return json_string_value(json_object_get(json_object_get(json_object_get(request, "outputs"), name), "path"));
}

uint64_t zs_seed(const json_t *request) {
    json_t *seed = json_object_get(request, "seed");
    if (json_is_integer(seed) && json_integer_value(seed) >= 0) return (uint64_t)json_integer_value(seed);
    if (json_is_real(seed) && json_real_value(seed) >= 0) return (uint64_t)json_real_value(seed);
    return 0;
}

struct zs_response {
    json_t *object;
};

zs_response *zs_response_new(void) {
    zs_response *response = malloc(sizeof *response);
    if (response == NULL) return NULL;
    response->object = json_object();
    if (response->object == NULL) {
        free(response);
        return NULL;
    }
    return response;
}

void zs_response_free(zs_response *response) {
    if (response == NULL) return;
    json_decref(response->object);
    free(response);
}

static int response_set_property(zs_response *response, const char *output, const char *key, json_t *value) {
    if (response == NULL || output == NULL || key == NULL || value == NULL) {
        json_decref(value);
        zs_log("error: zs_response_property_*: a NULL argument (output %s, key %s)", output ? output : "NULL",
               key ? key : "NULL");
        return -1;
    }
    json_t *outputs = json_object_get(response->object, "outputs");
    if (outputs == NULL) {
        outputs = json_object();
        json_object_set_new(response->object, "outputs", outputs);
    }
    json_t *entry = json_object_get(outputs, output);
    if (entry == NULL) {
        entry = json_object();
        json_object_set_new(outputs, output, entry);
        json_object_set_new(entry, "properties", json_object());
    }
    return json_object_set_new(json_object_get(entry, "properties"), key, value) == 0 ? 0 : -1;
}

int zs_response_property_string(zs_response *response, const char *output, const char *key, const char *value) {
    return response_set_property(response, output, key, value ? json_string(value) : NULL);
}

int zs_response_property_integer(zs_response *response, const char *output, const char *key, int64_t value) {
    return response_set_property(response, output, key, json_integer((json_int_t)value));
}

int zs_response_property_number(zs_response *response, const char *output, const char *key, double value) {
    if (!isfinite(value)) {
        zs_log("error: property %s of output %s must be a finite number, not %g", key ? key : "NULL",
               output ? output : "NULL", value);
        return -1;
    }
    return response_set_property(response, output, key, json_real(value));
}

int zs_response_property_bool(zs_response *response, const char *output, const char *key, int value) {
    return response_set_property(response, output, key, json_boolean(value));
}

int zs_response_metric(zs_response *response, const char *name, double value) {
    if (response == NULL || name == NULL || !isfinite(value)) {
        zs_log("error: metric %s must be a finite number, not %g", name ? name : "NULL", value);
        return -1;
    }
    json_t *metrics = json_object_get(response->object, "metrics");
    if (metrics == NULL) {
        metrics = json_object();
        json_object_set_new(response->object, "metrics", metrics);
    }
    return json_object_set_new(metrics, name, json_real(value)) == 0 ? 0 : -1;
}

int zs_response_message(zs_response *response, const char *message) {
    if (response == NULL || message == NULL) return -1;
    return json_object_set_new(response->object, "message", json_string(message)) == 0 ? 0 : -1;
}

static int print_response(json_t *object) {
    char *text = json_dumps(object, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) return -1;
    int ok = fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
    free(text);
    return ok ? 0 : -1;
}

int zs_response_write(zs_response *response) {
    if (response == NULL) return -1;
    if (json_object_get(response->object, "status") == NULL)
        json_object_set_new(response->object, "status", json_string("ok"));
    int result = print_response(response->object);
    zs_response_free(response);
    return result;
}

void zs_fail(const char *format, ...) {
    char message[2048];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof message, format, arguments);
    va_end(arguments);
    zs_log("error: %s", message);
    json_t *response = json_object();
    json_object_set_new(response, "status", json_string("error"));
    /* json_string refuses invalid UTF-8; json_stringn_nocheck would print it as is. */
    json_t *text = json_string(message);
    json_object_set_new(response, "message", text ? text : json_string("the step failed (see its log)"));
    print_response(response);
    json_decref(response);
    exit(1);
}

/* ==== CRC-32C ====================================================================================== */

#define ZS_CRC32C_POLY 0x82F63B78u

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t load_le64(const uint8_t *p) {
    return (uint64_t)load_le32(p) | ((uint64_t)load_le32(p + 4) << 32);
}

static inline void store_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void store_le64(uint8_t *p, uint64_t v) {
    store_le32(p, (uint32_t)v);
    store_le32(p + 4, (uint32_t)(v >> 32));
}

/* table[0] is the classic byte table; table[k][n] is the CRC of byte n followed by k zero bytes. */
static uint32_t crc_table[8][256];

/* The block sizes of the three-chain SSE4.2 and ARMv8 loops (see crc32c_sse42): big blocks for long buffers,
 * small ones for the rest and for buffers of a few hundred bytes. Multiples of 8. */
#define ZS_CRC_LONG_BLOCK 4096
#define ZS_CRC_SHORT_BLOCK 256

/* crc_shift_long[k][n] (and _short): the raw CRC register that byte n, placed as byte k of a register,
 * becomes after the block size in zero bytes; XOR the four entries for a register's four bytes. */
static uint32_t crc_shift_long[4][256];
static uint32_t crc_shift_short[4][256];

static void crc_build_shift_table(uint32_t table[4][256], size_t zero_bytes) {
    /* The images of the 32 single-bit registers, then every byte value by linearity. */
    uint32_t basis[32];
    for (int bit = 0; bit < 32; bit++) {
        uint32_t reg = (uint32_t)1 << bit;
        for (size_t i = 0; i < zero_bytes; i++) reg = crc_table[0][reg & 0xff] ^ (reg >> 8);
        basis[bit] = reg;
    }
    for (int k = 0; k < 4; k++) {
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t image = 0;
            for (int bit = 0; bit < 8; bit++) {
                if (n & (1u << bit)) image ^= basis[8 * k + bit];
            }
            table[k][n] = image;
        }
    }
}

static inline uint32_t crc_shift(const uint32_t table[4][256], uint32_t reg) {
    return table[0][reg & 0xff] ^ table[1][(reg >> 8) & 0xff] ^ table[2][(reg >> 16) & 0xff] ^ table[3][reg >> 24];
}

static int crc_use_hardware;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

#if ZS_HAVE_ARMV8_PATH
/* Whether this CPU has the ARMv8 CRC32 extension (optional in ARMv8.0, required from ARMv8.1). */
static int crc_cpu_has_armv8_crc(void) {
#if defined(__APPLE__)
    return 1; /* Every Apple arm64 CPU has it. */
#elif defined(__linux__) && defined(HWCAP_CRC32)
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#elif defined(__ARM_FEATURE_CRC32)
    return 1;
#else
    return 0;
#endif
}
#endif

static void crc_initialize(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? (crc >> 1) ^ ZS_CRC32C_POLY : crc >> 1;
        crc_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        for (int k = 1; k < 8; k++) {
            uint32_t previous = crc_table[k - 1][n];
            crc_table[k][n] = (previous >> 8) ^ crc_table[0][previous & 0xff];
        }
    }
    crc_build_shift_table(crc_shift_long, ZS_CRC_LONG_BLOCK);
    crc_build_shift_table(crc_shift_short, ZS_CRC_SHORT_BLOCK);
#if ZS_HAVE_SSE42_PATH
    __builtin_cpu_init();
    crc_use_hardware = __builtin_cpu_supports("sse4.2") && getenv("ZS_CRC32C_PORTABLE") == NULL;
#elif ZS_HAVE_ARMV8_PATH
    crc_use_hardware = crc_cpu_has_armv8_crc() && getenv("ZS_CRC32C_PORTABLE") == NULL;
#endif
}

static uint32_t crc32c_slicing(uint32_t crc, const uint8_t *p, size_t length) {
    const uint32_t(*t)[256] = (const uint32_t(*)[256])crc_table;
    crc = ~crc;
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        length--;
    }
    while (length >= 8) {
        uint32_t low = load_le32(p) ^ crc;
        uint32_t high = load_le32(p + 4);
        crc = t[7][low & 0xff] ^ t[6][(low >> 8) & 0xff] ^ t[5][(low >> 16) & 0xff] ^ t[4][low >> 24] ^
              t[3][high & 0xff] ^ t[2][(high >> 8) & 0xff] ^ t[1][(high >> 16) & 0xff] ^ t[0][high >> 24];
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        length--;
    }
    return ~crc;
}

#if ZS_HAVE_SSE42_PATH
static inline uint64_t load_u64(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

/* Three chains of crc32 instructions over adjacent blocks of `block` bytes, as many rounds as fit;
 * returns the raw register. The instruction takes ~3 cycles to deliver its result but can start every
 * cycle, so one chain waits on itself; three independent chains keep it busy. The chains' registers
 * are joined by linearity: the register after data D from register r is shift(r, |D|) ^ reg(0, D),
 * shift(r, n) being r fed n zero bytes, so reg(r, A B C) = shift(shift(reg(r, A), B) ^ reg(0, B), B)
 * ^ reg(0, C), and shift over one block is a table lookup per byte of the register. */
__attribute__((target("sse4.2"), always_inline)) static inline uint64_t
crc32c_sse42_3way(uint64_t value, const uint8_t **next, size_t *length, size_t block, const uint32_t shift[4][256]) {
    const uint8_t *p = *next;
    size_t left = *length;
    while (left >= 3 * block) {
        uint64_t a = value, b = 0, c = 0;
        for (size_t i = 0; i < block; i += 8) {
            a = _mm_crc32_u64(a, load_u64(p + i));
            b = _mm_crc32_u64(b, load_u64(p + block + i));
            c = _mm_crc32_u64(c, load_u64(p + 2 * block + i));
        }
        value = crc_shift(shift, crc_shift(shift, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
        p += 3 * block;
        left -= 3 * block;
    }
    *next = p;
    *length = left;
    return value;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *next, size_t length) {
    uint64_t value = crc ^ 0xffffffffu;
    while (length > 0 && ((uintptr_t)next & 7) != 0) {
        value = _mm_crc32_u8((uint32_t)value, *next++);
        length--;
    }
    value = crc32c_sse42_3way(value, &next, &length, ZS_CRC_LONG_BLOCK, crc_shift_long);
    value = crc32c_sse42_3way(value, &next, &length, ZS_CRC_SHORT_BLOCK, crc_shift_short);
    while (length >= 8) {
        value = _mm_crc32_u64(value, load_u64(next));
        next += 8;
        length -= 8;
    }
    while (length > 0) {
        value = _mm_crc32_u8((uint32_t)value, *next++);
        length--;
    }
    return (uint32_t)value ^ 0xffffffffu;
}
#endif

#if ZS_HAVE_ARMV8_PATH
static inline uint64_t load_u64_arm(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

/* The same three chains as crc32c_sse42_3way, with the ARMv8 crc32cx instruction (__crc32cd). */
__attribute__((target("crc"), always_inline)) static inline uint32_t
crc32c_armv8_3way(uint32_t value, const uint8_t **next, size_t *length, size_t block, const uint32_t shift[4][256]) {
    const uint8_t *p = *next;
    size_t left = *length;
    while (left >= 3 * block) {
        uint32_t a = value, b = 0, c = 0;
        for (size_t i = 0; i < block; i += 8) {
            a = __crc32cd(a, load_u64_arm(p + i));
            b = __crc32cd(b, load_u64_arm(p + block + i));
            c = __crc32cd(c, load_u64_arm(p + 2 * block + i));
        }
        value = crc_shift(shift, crc_shift(shift, a) ^ b) ^ c;
        p += 3 * block;
        left -= 3 * block;
    }
    *next = p;
    *length = left;
    return value;
}

__attribute__((target("crc"))) static uint32_t crc32c_armv8(uint32_t crc, const uint8_t *next, size_t length) {
    uint32_t value = crc ^ 0xffffffffu;
    while (length > 0 && ((uintptr_t)next & 7) != 0) {
        value = __crc32cb(value, *next++);
        length--;
    }
    value = crc32c_armv8_3way(value, &next, &length, ZS_CRC_LONG_BLOCK, crc_shift_long);
    value = crc32c_armv8_3way(value, &next, &length, ZS_CRC_SHORT_BLOCK, crc_shift_short);
    while (length >= 8) {
        value = __crc32cd(value, load_u64_arm(next));
        next += 8;
        length -= 8;
    }
    while (length > 0) {
        value = __crc32cb(value, *next++);
        length--;
    }
    return value ^ 0xffffffffu;
}
#endif

uint32_t zs_crc32c_portable(uint32_t crc, const void *data, size_t length) {
    pthread_once(&crc_once, crc_initialize);
    return length ? crc32c_slicing(crc, (const uint8_t *)data, length) : crc;
}

uint32_t zs_crc32c(uint32_t crc, const void *data, size_t length) {
    pthread_once(&crc_once, crc_initialize);
    if (length == 0) return crc;
#if ZS_HAVE_SSE42_PATH
    if (crc_use_hardware) return crc32c_sse42(crc, (const uint8_t *)data, length);
#elif ZS_HAVE_ARMV8_PATH
    if (crc_use_hardware) return crc32c_armv8(crc, (const uint8_t *)data, length);
#endif
    return crc32c_slicing(crc, (const uint8_t *)data, length);
}

const char *zs_crc32c_implementation(void) {
    pthread_once(&crc_once, crc_initialize);
#if ZS_HAVE_ARMV8_PATH
    if (crc_use_hardware) return "ARMv8 CRC32";
#endif
    return crc_use_hardware ? "SSE4.2" : "portable (slicing-by-8)";
}

uint32_t zs_mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u; }

uint32_t zs_unmask_crc(uint32_t masked) {
    uint32_t rotated = masked - 0xA282EAD8u;
    return (rotated >> 17) | (rotated << 15);
}

static inline uint32_t masked_crc(const void *data, size_t length) { return zs_mask_crc(zs_crc32c(0, data, length)); }

/* ==== Compression =================================================================================== */

const char *zs_compression_name(zs_compression compression) {
    switch (compression) {
    case ZS_COMPRESSION_AUTO: return "AUTO";
    case ZS_COMPRESSION_NONE: return "NONE";
    case ZS_COMPRESSION_GZIP: return "GZIP";
    case ZS_COMPRESSION_ZLIB: return "ZLIB";
    }
    return "UNKNOWN";
}

int zs_compression_from_name(const char *name) {
    if (name == NULL) return -2;
    char upper[8];
    size_t length = strlen(name);
    if (length >= sizeof upper) return -2;
    for (size_t i = 0; i <= length; i++) upper[i] = (char)((name[i] >= 'a' && name[i] <= 'z') ? name[i] - 32 : name[i]);
    if (length == 0 || strcmp(upper, "NONE") == 0) return ZS_COMPRESSION_NONE;
    if (strcmp(upper, "GZIP") == 0) return ZS_COMPRESSION_GZIP;
    if (strcmp(upper, "ZLIB") == 0) return ZS_COMPRESSION_ZLIB;
    return -2;
}

zs_compression zs_detect_compression(const void *prefix_bytes, size_t length) {
    const uint8_t *prefix = (const uint8_t *)prefix_bytes;
    if (length >= 12 && masked_crc(prefix, 8) == load_le32(prefix + 8)) return ZS_COMPRESSION_NONE;
    if (length < 2) return ZS_COMPRESSION_NONE;
    if (prefix[0] == 0x1f && prefix[1] == 0x8b) return ZS_COMPRESSION_GZIP;
    unsigned method = prefix[0] & 0x0f, window_log = prefix[0] >> 4;
    if (method == 8 && window_log <= 7 && (((unsigned)prefix[0] << 8) | prefix[1]) % 31 == 0) return ZS_COMPRESSION_ZLIB;
    return ZS_COMPRESSION_NONE;
}

static int window_bits(zs_compression compression) {
    return compression == ZS_COMPRESSION_GZIP ? 16 + MAX_WBITS : MAX_WBITS;
}

/* ==== POSIX helpers ================================================================================== */

static ssize_t read_some(int fd, void *buffer, size_t count) {
    for (;;) {
        ssize_t result = read(fd, buffer, count);
        if (result >= 0 || errno != EINTR) return result;
    }
}

static int write_all(int fd, const uint8_t *data, size_t count) {
    while (count > 0) {
        ssize_t written = write(fd, data, count);
        if (written < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += written;
        count -= (size_t)written;
    }
    return 0;
}

/* ==== Reader ========================================================================================= */

#define ZS_HEADER_SIZE 12
#define ZS_FOOTER_SIZE 4

struct zs_reader {
    /* The files to read, in order, and the one being read. */
    char **paths;
    size_t path_count, path_index;
    zs_reader_options options;
    /* The current file. */
    int fd;
    zs_compression compression;
    int64_t record_index;
    /* zlib, for GZIP and ZLIB files. */
    z_stream zstream;
    int inflating, member_ended, input_ended;
    uint8_t *input;
    size_t input_capacity;
    /* The uncompressed stream: bytes [start, end) of `buffer` are unread; `base` is the stream
     * offset of buffer[0]. */
    uint8_t *buffer;
    size_t capacity, start, end;
    uint64_t base;
    int source_ended;
    /* A failure is kept and reported again. */
    int failed;
    zs_error failure;
};

zs_reader_options zs_reader_default_options(void) {
    zs_reader_options options;
    options.compression = ZS_COMPRESSION_AUTO;
    options.max_record_length = ZS_DEFAULT_MAX_RECORD_LENGTH;
    options.buffer_size = ZS_DEFAULT_BUFFER_SIZE;
    options.shard_prefix = NULL;
    return options;
}

static void reader_close_file(zs_reader *reader) {
    if (reader->fd >= 0) close(reader->fd);
    reader->fd = -1;
    if (reader->inflating) inflateEnd(&reader->zstream);
    reader->inflating = 0;
}

static const char *reader_current_path(const zs_reader *reader) {
    if (reader->path_count == 0) return "";
    size_t index = reader->path_index < reader->path_count ? reader->path_index : reader->path_count - 1;
    return reader->paths[index];
}

/* Records a failure of the current file and returns its code. */
static zs_status reader_fail(zs_reader *reader, zs_error *error) {
    reader->failed = 1;
    if (error != NULL) *error = reader->failure;
    return reader->failure.code;
}

/* Opens paths[path_index]: reads its first bytes, detects the compression. */
static zs_status reader_open_file(zs_reader *reader) {
    const char *path = reader->paths[reader->path_index];
    reader->record_index = 0;
    reader->base = 0;
    reader->start = reader->end = 0;
    reader->source_ended = 0;
    reader->member_ended = reader->input_ended = 0;
    reader->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (reader->fd < 0) return io_error(&reader->failure, path, "open", errno);
    uint8_t prefix[ZS_HEADER_SIZE];
    size_t have = 0;
    while (have < sizeof prefix) {
        ssize_t count = read_some(reader->fd, prefix + have, sizeof prefix - have);
        if (count < 0) return io_error(&reader->failure, path, "read", errno);
        if (count == 0) break;
        have += (size_t)count;
    }
    reader->compression = reader->options.compression == ZS_COMPRESSION_AUTO
                              ? zs_detect_compression(prefix, have)
                              : reader->options.compression;
    if (reader->compression == ZS_COMPRESSION_NONE) {
        memcpy(reader->buffer, prefix, have);
        reader->end = have;
        return ZS_OK;
    }
    memset(&reader->zstream, 0, sizeof reader->zstream);
    int status = inflateInit2(&reader->zstream, window_bits(reader->compression));
    if (status != Z_OK)
        return set_error(&reader->failure, status == Z_MEM_ERROR ? ZS_ERR_NO_MEMORY : ZS_ERR_COMPRESSED_STREAM, path,
                         0, 0, 0, "'%s': zlib inflateInit2 failed with status %d", path, status);
    reader->inflating = 1;
    memcpy(reader->input, prefix, have);
    reader->zstream.next_in = reader->input;
    reader->zstream.avail_in = (uInt)have;
    return ZS_OK;
}

zs_reader *zs_reader_open_with(const char *path, const zs_reader_options *given, zs_error *error) {
    zs_reader_options options = given ? *given : zs_reader_default_options();
    if (path == NULL) {
        set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_reader_open: the path is NULL");
        return NULL;
    }
    if (options.compression < ZS_COMPRESSION_AUTO || options.compression > ZS_COMPRESSION_ZLIB) {
        set_error(error, ZS_ERR_INVALID_ARGUMENT, path, -1, 0, 0,
                  "'%s': unknown compression %d: use ZS_COMPRESSION_AUTO, _NONE, _GZIP or _ZLIB", path,
                  (int)options.compression);
        return NULL;
    }
    if (options.buffer_size < 64) options.buffer_size = 64;
    zs_reader *reader = calloc(1, sizeof *reader);
    if (reader == NULL) {
        no_memory(error, path);
        return NULL;
    }
    reader->fd = -1;
    reader->options = options;
    reader->options.shard_prefix = NULL;
    struct stat status;
    if (stat(path, &status) == 0 && S_ISDIR(status.st_mode)) {
        if (zs_shard_paths(path, options.shard_prefix ? options.shard_prefix : "data", &reader->paths,
                           &reader->path_count, error) != ZS_OK) {
            free(reader);
            return NULL;
        }
    } else {
        reader->paths = malloc(sizeof(char *));
        if (reader->paths) reader->paths[0] = strdup(path);
        if (reader->paths == NULL || reader->paths[0] == NULL) {
            free(reader->paths);
            free(reader);
            no_memory(error, path);
            return NULL;
        }
        reader->path_count = 1;
    }
    reader->capacity = options.buffer_size;
    reader->input_capacity = options.buffer_size;
    reader->buffer = malloc(reader->capacity);
    reader->input = malloc(reader->input_capacity);
    if (reader->buffer == NULL || reader->input == NULL) {
        zs_reader_close(reader);
        no_memory(error, path);
        return NULL;
    }
    /* The first file is opened now, so that a missing file is reported by open. */
    if (reader_open_file(reader) != ZS_OK) {
        if (error) *error = reader->failure;
        zs_reader_close(reader);
        return NULL;
    }
    return reader;
}

zs_reader *zs_reader_open(const char *path, zs_compression compression, zs_error *error) {
    zs_reader_options options = zs_reader_default_options();
    options.compression = compression;
    return zs_reader_open_with(path, &options, error);
}

void zs_reader_close(zs_reader *reader) {
    if (reader == NULL) return;
    reader_close_file(reader);
    zs_free_paths(reader->paths, reader->path_count);
    free(reader->buffer);
    free(reader->input);
    free(reader);
}

const char *zs_reader_path(const zs_reader *reader) { return reader_current_path(reader); }
zs_compression zs_reader_compression(const zs_reader *reader) { return reader->compression; }
int64_t zs_reader_record_index(const zs_reader *reader) { return reader->record_index; }

/* Decompresses into `out`: the number of bytes produced (0 only at the clean end of the data), or -1
 * with reader->failure set. Several gzip members one after another read as one stream. */
static ssize_t reader_inflate(zs_reader *reader, uint8_t *out, size_t capacity) {
    const char *path = reader_current_path(reader);
    z_stream *stream = &reader->zstream;
    if (capacity > UINT_MAX) capacity = UINT_MAX;
    for (;;) {
        if (stream->avail_in == 0 && !reader->input_ended) {
            ssize_t count = read_some(reader->fd, reader->input, reader->input_capacity);
            if (count < 0) {
                io_error(&reader->failure, path, "read", errno);
                return -1;
            }
            if (count == 0) {
                reader->input_ended = 1;
            } else {
                stream->next_in = reader->input;
                stream->avail_in = (uInt)count;
            }
        }
        if (reader->member_ended) {
            if (stream->avail_in == 0) return 0;
            /* More bytes after the end: another gzip member, or garbage that inflate rejects. */
            inflateReset(stream);
            reader->member_ended = 0;
        }
        stream->next_out = out;
        stream->avail_out = (uInt)capacity;
        int status = inflate(stream, Z_NO_FLUSH);
        size_t produced = capacity - stream->avail_out;
        const char *reason = NULL;
        if (status == Z_STREAM_END) {
            reader->member_ended = 1;
        } else if (status == Z_BUF_ERROR && reader->input_ended && stream->avail_in == 0) {
            reason = "the compressed stream ends before its end marker: the file is truncated";
        } else if (status != Z_OK && status != Z_BUF_ERROR) {
            reason = stream->msg ? stream->msg : (status == Z_MEM_ERROR ? "out of memory" : "invalid compressed data");
        }
        if (reason != NULL && produced == 0) {
            char intact[64];
            set_error(&reader->failure, ZS_ERR_COMPRESSED_STREAM, path, reader->record_index, 0, 0,
                      "'%s': the %s stream is damaged or incomplete while reading record %lld (%s); %s. Check that "
                      "the file really is %s-compressed and complete, or re-create it.",
                      path, zs_compression_name(reader->compression), (long long)reader->record_index, reason,
                      intact_prefix(reader->record_index, intact, sizeof intact),
                      zs_compression_name(reader->compression));
            return -1;
        }
        /* With a problem after some output, the output comes first; the next call reports it. */
        if (produced > 0) return (ssize_t)produced;
    }
}

/* Makes `needed` bytes available from reader->start on, unless the stream ends first. */
static zs_status reader_fill(zs_reader *reader, size_t needed) {
    if (reader->end - reader->start >= needed) return ZS_OK;
    if (reader->capacity - reader->start < needed) {
        size_t unread = reader->end - reader->start;
        memmove(reader->buffer, reader->buffer + reader->start, unread);
        reader->base += reader->start;
        reader->start = 0;
        reader->end = unread;
        if (reader->capacity < needed) {
            /* A record larger than the buffer: grow to hold it. */
            uint8_t *grown = realloc(reader->buffer, needed);
            if (grown == NULL) return no_memory(&reader->failure, reader_current_path(reader));
            reader->buffer = grown;
            reader->capacity = needed;
        }
    }
    while (reader->end - reader->start < needed && !reader->source_ended) {
        ssize_t count;
        if (reader->inflating) {
            count = reader_inflate(reader, reader->buffer + reader->end, reader->capacity - reader->end);
            if (count < 0) return reader->failure.code;
        } else {
            count = read_some(reader->fd, reader->buffer + reader->end, reader->capacity - reader->end);
            if (count < 0) return io_error(&reader->failure, reader_current_path(reader), "read", errno);
        }
        if (count == 0) reader->source_ended = 1;
        reader->end += (size_t)count;
    }
    return ZS_OK;
}

zs_status zs_reader_next(zs_reader *reader, const uint8_t **data, size_t *length, zs_error *error) {
    if (reader == NULL || data == NULL || length == NULL)
        return set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_reader_next: a NULL argument");
    if (reader->failed) return reader_fail(reader, error);
    char intact[64];
    for (;;) {
        if (reader->path_index >= reader->path_count) return ZS_END;
        if (reader->fd < 0 && reader_open_file(reader) != ZS_OK) return reader_fail(reader, error);
        const char *path = reader->paths[reader->path_index];
        if (reader_fill(reader, ZS_HEADER_SIZE) != ZS_OK) return reader_fail(reader, error);
        size_t available = reader->end - reader->start;
        uint64_t offset = reader->base + reader->start;
        if (available == 0) {
            /* This file is done: on to the next shard. */
            reader_close_file(reader);
            if (reader->path_index + 1 >= reader->path_count) {
                reader->path_index = reader->path_count;
                return ZS_END;
            }
            reader->path_index++;
            continue;
        }
        if (available < ZS_HEADER_SIZE) {
            set_error(&reader->failure, ZS_ERR_TRUNCATED, path, reader->record_index, offset, 0,
                      "'%s': record %lld (at byte %llu) is cut short: the file ends after %zu of its %d bytes; %s. The "
                      "file was probably not finished (an interrupted write or copy): re-create or re-copy it.",
                      path, (long long)reader->record_index, (unsigned long long)offset, available, ZS_HEADER_SIZE,
                      intact_prefix(reader->record_index, intact, sizeof intact));
            return reader_fail(reader, error);
        }
        const uint8_t *header = reader->buffer + reader->start;
        uint64_t record_length = load_le64(header);
        if (masked_crc(header, 8) != load_le32(header + 8)) {
            set_error(&reader->failure, ZS_ERR_CORRUPT_LENGTH, path, reader->record_index, offset, 0,
                      "'%s': the length header of record %lld (at byte %llu) fails its CRC32C check, so this record "
                      "and all after it are unreadable; %s. If the file is compressed, check the compression "
                      "setting; otherwise the file is damaged: re-create or re-copy it.",
                      path, (long long)reader->record_index, (unsigned long long)offset,
                      intact_prefix(reader->record_index, intact, sizeof intact));
            return reader_fail(reader, error);
        }
        if (record_length > reader->options.max_record_length ||
            record_length > SIZE_MAX - ZS_HEADER_SIZE - ZS_FOOTER_SIZE) {
            set_error(&reader->failure, ZS_ERR_RECORD_TOO_LARGE, path, reader->record_index, offset, 0,
                      "'%s': record %lld (at byte %llu) announces %llu bytes, more than the reader's limit of %llu. "
                      "If the file really holds records this large, raise zs_reader_options.max_record_length; "
                      "otherwise the file is damaged.",
                      path, (long long)reader->record_index, (unsigned long long)offset,
                      (unsigned long long)record_length, (unsigned long long)reader->options.max_record_length);
            return reader_fail(reader, error);
        }
        size_t total = ZS_HEADER_SIZE + (size_t)record_length + ZS_FOOTER_SIZE;
        if (reader_fill(reader, total) != ZS_OK) return reader_fail(reader, error);
        available = reader->end - reader->start;
        offset = reader->base + reader->start;
        if (available < total) {
            set_error(&reader->failure, ZS_ERR_TRUNCATED, path, reader->record_index, offset, 0,
                      "'%s': record %lld (at byte %llu) is cut short: the file ends after %zu of its %zu bytes; %s. "
                      "The file was probably not finished (an interrupted write or copy): re-create or re-copy it.",
                      path, (long long)reader->record_index, (unsigned long long)offset, available, total,
                      intact_prefix(reader->record_index, intact, sizeof intact));
            return reader_fail(reader, error);
        }
        const uint8_t *record = reader->buffer + reader->start + ZS_HEADER_SIZE;
        if (masked_crc(record, (size_t)record_length) != load_le32(record + record_length)) {
            set_error(&reader->failure, ZS_ERR_CORRUPT_DATA, path, reader->record_index, offset + ZS_HEADER_SIZE, 0,
                      "'%s': the data of record %lld (%llu bytes at byte %llu) fails its CRC32C check; %s. The file "
                      "is damaged: re-create or re-copy it.",
                      path, (long long)reader->record_index, (unsigned long long)record_length,
                      (unsigned long long)(offset + ZS_HEADER_SIZE),
                      intact_prefix(reader->record_index, intact, sizeof intact));
            return reader_fail(reader, error);
        }
        reader->start += total;
        reader->record_index++;
        *data = record;
        *length = (size_t)record_length;
        return ZS_OK;
    }
}

/* ==== Writer ========================================================================================= */

struct zs_writer {
    char *path;
    int fd;
    zs_compression compression;
    z_stream zstream;
    int deflating;
    /* Uncompressed bytes waiting to be written (or compressed). */
    uint8_t *buffer;
    size_t capacity, length;
    /* Compressed bytes waiting to be written. */
    uint8_t *output;
    size_t output_capacity, pending;
    uint64_t record_count;
    int open;
};

zs_writer *zs_writer_open(const char *path, zs_compression compression, int level, zs_error *error) {
    if (path == NULL) {
        set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_writer_open: the path is NULL");
        return NULL;
    }
    if (compression < ZS_COMPRESSION_NONE || compression > ZS_COMPRESSION_ZLIB) {
        set_error(error, ZS_ERR_INVALID_ARGUMENT, path, -1, 0, 0,
                  "'%s': a writer's compression is ZS_COMPRESSION_NONE, _GZIP or _ZLIB, not %d", path, (int)compression);
        return NULL;
    }
    zs_writer *writer = calloc(1, sizeof *writer);
    if (writer == NULL) {
        no_memory(error, path);
        return NULL;
    }
    writer->fd = -1;
    writer->compression = compression;
    writer->capacity = ZS_DEFAULT_BUFFER_SIZE;
    writer->output_capacity = ZS_DEFAULT_BUFFER_SIZE;
    writer->path = strdup(path);
    writer->buffer = malloc(writer->capacity);
    writer->output = compression != ZS_COMPRESSION_NONE ? malloc(writer->output_capacity) : NULL;
    if (writer->path == NULL || writer->buffer == NULL || (compression != ZS_COMPRESSION_NONE && writer->output == NULL)) {
        no_memory(error, path);
        goto failed;
    }
    if (compression != ZS_COMPRESSION_NONE) {
        if (level < 0) level = Z_DEFAULT_COMPRESSION;
        if (level > 9) level = 9;
        /* memLevel 9, as TensorFlow's ZlibCompressionOptions: with the default level the bytes match TF's. */
        int status = deflateInit2(&writer->zstream, level, Z_DEFLATED, window_bits(compression), 9, Z_DEFAULT_STRATEGY);
        if (status != Z_OK) {
            set_error(error, ZS_ERR_NO_MEMORY, path, -1, 0, 0, "'%s': zlib deflateInit2 failed with status %d", path,
                      status);
            goto failed;
        }
        writer->deflating = 1;
    }
    writer->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (writer->fd < 0) {
        io_error(error, path, "create", errno);
        goto failed;
    }
    writer->open = 1;
    return writer;
failed:
    if (writer->deflating) deflateEnd(&writer->zstream);
    free(writer->path);
    free(writer->buffer);
    free(writer->output);
    free(writer);
    return NULL;
}

uint64_t zs_writer_record_count(const zs_writer *writer) { return writer->record_count; }

static zs_status writer_broken(zs_writer *writer, zs_error *error, const char *operation, int code) {
    writer->open = 0;
    return io_error(error, writer->path, operation, code);
}

/* Writes (compressing) `length` bytes; with a flush mode other than Z_NO_FLUSH, everything reaches
 * the file. */
static zs_status writer_emit(zs_writer *writer, const uint8_t *data, size_t length, int flush, zs_error *error) {
    if (!writer->deflating) {
        if (write_all(writer->fd, data, length) != 0) return writer_broken(writer, error, "write", errno);
        return ZS_OK;
    }
    z_stream *stream = &writer->zstream;
    do {
        size_t chunk = length > UINT_MAX ? UINT_MAX : length;
        int mode = chunk == length ? flush : Z_NO_FLUSH;
        stream->next_in = (Bytef *)data;
        stream->avail_in = (uInt)chunk;
        for (;;) {
            stream->next_out = writer->output + writer->pending;
            stream->avail_out = (uInt)(writer->output_capacity - writer->pending);
            int status = deflate(stream, mode);
            if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
                writer->open = 0;
                return set_error(error, ZS_ERR_IO, writer->path, -1, 0, 0,
                                 "'%s': zlib failed to compress the output (status %d); the file is incomplete: write "
                                 "it again", writer->path, status);
            }
            writer->pending = writer->output_capacity - stream->avail_out;
            /* With room left over, deflate has taken all input and done what `mode` asks. */
            if (writer->pending < writer->output_capacity) break;
            if (write_all(writer->fd, writer->output, writer->pending) != 0)
                return writer_broken(writer, error, "write", errno);
            writer->pending = 0;
        }
        data += chunk;
        length -= chunk;
    } while (length > 0);
    if (flush != Z_NO_FLUSH && writer->pending > 0) {
        if (write_all(writer->fd, writer->output, writer->pending) != 0)
            return writer_broken(writer, error, "write", errno);
        writer->pending = 0;
    }
    return ZS_OK;
}

static zs_status writer_drain(zs_writer *writer, int flush, zs_error *error) {
    if (writer->length == 0 && (!writer->deflating || flush == Z_NO_FLUSH)) return ZS_OK;
    zs_status status = writer_emit(writer, writer->buffer, writer->length, flush, error);
    writer->length = 0;
    return status;
}

static zs_status writer_append(zs_writer *writer, const uint8_t *data, size_t length, zs_error *error) {
    if (length > writer->capacity - writer->length) {
        zs_status status = writer_drain(writer, Z_NO_FLUSH, error);
        if (status != ZS_OK) return status;
        if (length >= writer->capacity) return writer_emit(writer, data, length, Z_NO_FLUSH, error);
    }
    memcpy(writer->buffer + writer->length, data, length);
    writer->length += length;
    return ZS_OK;
}

zs_status zs_writer_write(zs_writer *writer, const void *data, size_t length, zs_error *error) {
    if (writer == NULL || (data == NULL && length > 0))
        return set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_writer_write: a NULL argument");
    if (!writer->open)
        return set_error(error, ZS_ERR_CLOSED, writer->path, -1, 0, 0,
                         "'%s': the TFRecord writer is closed (closed explicitly or by an earlier error); open a new one",
                         writer->path);
    uint8_t framing[ZS_HEADER_SIZE + ZS_FOOTER_SIZE];
    store_le64(framing, (uint64_t)length);
    store_le32(framing + 8, masked_crc(framing, 8));
    store_le32(framing + 12, masked_crc(data, length));
    if (length <= writer->capacity - writer->length &&
        ZS_HEADER_SIZE + length + ZS_FOOTER_SIZE <= writer->capacity - writer->length) {
        /* The common case: the whole record fits in the buffer. */
        uint8_t *out = writer->buffer + writer->length;
        memcpy(out, framing, ZS_HEADER_SIZE);
        if (length) memcpy(out + ZS_HEADER_SIZE, data, length);
        memcpy(out + ZS_HEADER_SIZE + length, framing + ZS_HEADER_SIZE, ZS_FOOTER_SIZE);
        writer->length += ZS_HEADER_SIZE + length + ZS_FOOTER_SIZE;
    } else {
        zs_status status = writer_append(writer, framing, ZS_HEADER_SIZE, error);
        if (status == ZS_OK && length) status = writer_append(writer, (const uint8_t *)data, length, error);
        if (status == ZS_OK) status = writer_append(writer, framing + ZS_HEADER_SIZE, ZS_FOOTER_SIZE, error);
        if (status != ZS_OK) return status;
    }
    writer->record_count++;
    return ZS_OK;
}

zs_status zs_writer_flush(zs_writer *writer, zs_error *error) {
    if (writer == NULL) return set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_writer_flush: NULL");
    if (!writer->open)
        return set_error(error, ZS_ERR_CLOSED, writer->path, -1, 0, 0,
                         "'%s': the TFRecord writer is closed (closed explicitly or by an earlier error); open a new one",
                         writer->path);
    return writer_drain(writer, Z_SYNC_FLUSH, error);
}

zs_status zs_writer_close(zs_writer *writer, zs_error *error) {
    if (writer == NULL) return ZS_OK;
    zs_status status = ZS_OK;
    if (writer->open) status = writer_drain(writer, Z_FINISH, error);
    if (writer->fd >= 0 && close(writer->fd) != 0 && status == ZS_OK && errno != EINTR)
        status = io_error(error, writer->path, "close", errno);
    if (writer->deflating) deflateEnd(&writer->zstream);
    free(writer->path);
    free(writer->buffer);
    free(writer->output);
    free(writer);
    return status;
}

/* ==== tf.train.Example =============================================================================== */
/*
 * Field numbers from tensorflow/core/example/{example,feature}.proto:
 *   Example { Features features = 1; }
 *   Features { map<string, Feature> feature = 1; }      (entry: string key = 1; Feature value = 2;)
 *   Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
 *   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed = true]; }
 *   Int64List { repeated int64 value = 1 [packed = true]; }
 */

zs_example *zs_example_new(void) { return calloc(1, sizeof(zs_example)); }

static void feature_release(zs_feature *feature) {
    free(feature->name);
    free(feature->floats); /* floats, int64s and bytes share one block */
    free(feature->storage);
}

void zs_example_free(zs_example *example) {
    if (example == NULL) return;
    for (size_t i = 0; i < example->capacity; i++) feature_release(&example->features[i]);
    free(example->features);
    free(example);
}

void zs_example_clear(zs_example *example) {
    if (example != NULL) example->count = 0;
}

static zs_feature *example_find(const zs_example *example, const char *name, size_t length) {
    for (size_t i = 0; i < example->count; i++) {
        zs_feature *feature = &example->features[i];
        if (feature->name_length == length && memcmp(feature->name, name, length) == 0) return feature;
    }
    return NULL;
}

const zs_feature *zs_example_get(const zs_example *example, const char *name) {
    return example && name ? example_find(example, name, strlen(name)) : NULL;
}

static void feature_reset(zs_feature *feature, zs_feature_kind kind) {
    feature->kind = kind;
    feature->count = 0;
    feature->storage_length = 0;
}

/* A feature named `name` (`length` bytes) of `kind`, empty: the existing one or a new one. */
static zs_feature *example_add(zs_example *example, const char *name, size_t length, zs_feature_kind kind) {
    zs_feature *feature = example_find(example, name, length);
    if (feature != NULL) {
        feature_reset(feature, kind);
        return feature;
    }
    if (example->count == example->capacity) {
        size_t capacity = example->capacity ? example->capacity * 2 : 8;
        zs_feature *grown = realloc(example->features, capacity * sizeof *grown);
        if (grown == NULL) return NULL;
        memset(grown + example->capacity, 0, (capacity - example->capacity) * sizeof *grown);
        example->features = grown;
        example->capacity = capacity;
    }
    feature = &example->features[example->count];
    if (feature->name_capacity < length + 1) {
        size_t capacity = length + 1 < 32 ? 32 : length + 1;
        char *grown = realloc(feature->name, capacity);
        if (grown == NULL) return NULL;
        feature->name = grown;
        feature->name_capacity = capacity;
    }
    if (length) memcpy(feature->name, name, length);
    feature->name[length] = '\0';
    feature->name_length = length;
    feature_reset(feature, kind);
    example->count++;
    return feature;
}

zs_feature *zs_example_add(zs_example *example, const char *name, zs_feature_kind kind) {
    if (example == NULL || name == NULL || kind < ZS_FEATURE_UNSET || kind > ZS_FEATURE_INT64) return NULL;
    return example_add(example, name, strlen(name), kind);
}

/* Room for `extra` more values (of up to 16 bytes each, the size of zs_bytes). */
static zs_status feature_reserve(zs_feature *feature, size_t extra) {
    size_t element = sizeof(zs_bytes);
    if (feature->count + extra <= feature->values_capacity) return ZS_OK;
    size_t capacity = feature->values_capacity ? feature->values_capacity : 4;
    while (capacity < feature->count + extra) capacity *= 2;
    void *grown = realloc(feature->floats, capacity * element);
    if (grown == NULL) return ZS_ERR_NO_MEMORY;
    feature->floats = (float *)grown;
    feature->int64s = (int64_t *)grown;
    feature->bytes = (zs_bytes *)grown;
    feature->values_capacity = capacity;
    return ZS_OK;
}

zs_status zs_feature_append_float(zs_feature *feature, float value) {
    if (feature == NULL || feature->kind != ZS_FEATURE_FLOAT) return ZS_ERR_INVALID_ARGUMENT;
    if (feature_reserve(feature, 1) != ZS_OK) return ZS_ERR_NO_MEMORY;
    feature->floats[feature->count++] = value;
    return ZS_OK;
}

zs_status zs_feature_append_int64(zs_feature *feature, int64_t value) {
    if (feature == NULL || feature->kind != ZS_FEATURE_INT64) return ZS_ERR_INVALID_ARGUMENT;
    if (feature_reserve(feature, 1) != ZS_OK) return ZS_ERR_NO_MEMORY;
    feature->int64s[feature->count++] = value;
    return ZS_OK;
}

zs_status zs_feature_append_bytes(zs_feature *feature, const void *data, size_t length) {
    if (feature == NULL || feature->kind != ZS_FEATURE_BYTES || (data == NULL && length > 0))
        return ZS_ERR_INVALID_ARGUMENT;
    if (feature_reserve(feature, 1) != ZS_OK) return ZS_ERR_NO_MEMORY;
    if (feature->storage_capacity - feature->storage_length < length) {
        size_t capacity = feature->storage_capacity ? feature->storage_capacity : 64;
        while (capacity - feature->storage_length < length) capacity *= 2;
        /* The values point into the storage: hold them as offsets while it moves. */
        uint8_t *old = feature->storage;
        for (size_t i = 0; i < feature->count; i++)
            feature->bytes[i].data = (const uint8_t *)(uintptr_t)(feature->bytes[i].data - old);
        uint8_t *grown = realloc(old, capacity);
        uint8_t *base = grown ? grown : old;
        for (size_t i = 0; i < feature->count; i++)
            feature->bytes[i].data = base + (uintptr_t)feature->bytes[i].data;
        if (grown == NULL) return ZS_ERR_NO_MEMORY;
        feature->storage = grown;
        feature->storage_capacity = capacity;
    }
    uint8_t *copy = feature->storage + feature->storage_length;
    if (length) memcpy(copy, data, length);
    feature->storage_length += length;
    feature->bytes[feature->count].data = copy;
    feature->bytes[feature->count].length = length;
    feature->count++;
    return ZS_OK;
}

zs_status zs_example_set_floats(zs_example *example, const char *name, const float *values, size_t count) {
    zs_feature *feature = zs_example_add(example, name, ZS_FEATURE_FLOAT);
    if (feature == NULL || (values == NULL && count > 0)) return feature ? ZS_ERR_INVALID_ARGUMENT : ZS_ERR_NO_MEMORY;
    if (feature_reserve(feature, count) != ZS_OK) return ZS_ERR_NO_MEMORY;
    if (count) memcpy(feature->floats, values, count * sizeof *values);
    feature->count = count;
    return ZS_OK;
}

zs_status zs_example_set_int64s(zs_example *example, const char *name, const int64_t *values, size_t count) {
    zs_feature *feature = zs_example_add(example, name, ZS_FEATURE_INT64);
    if (feature == NULL || (values == NULL && count > 0)) return feature ? ZS_ERR_INVALID_ARGUMENT : ZS_ERR_NO_MEMORY;
    if (feature_reserve(feature, count) != ZS_OK) return ZS_ERR_NO_MEMORY;
    if (count) memcpy(feature->int64s, values, count * sizeof *values);
    feature->count = count;
    return ZS_OK;
}

zs_status zs_example_set_bytes(zs_example *example, const char *name, const zs_bytes *values, size_t count) {
    zs_feature *feature = zs_example_add(example, name, ZS_FEATURE_BYTES);
    if (feature == NULL) return ZS_ERR_NO_MEMORY;
    for (size_t i = 0; i < count; i++) {
        zs_status status = zs_feature_append_bytes(feature, values[i].data, values[i].length);
        if (status != ZS_OK) return status;
    }
    return ZS_OK;
}

zs_status zs_example_set_string(zs_example *example, const char *name, const char *text) {
    if (text == NULL) return ZS_ERR_INVALID_ARGUMENT;
    zs_bytes value = {(const uint8_t *)text, strlen(text)};
    return zs_example_set_bytes(example, name, &value, 1);
}

/* ---- Encoding ---- */

static inline size_t varint_size(uint64_t value) {
    size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

/* A length-delimited field with a one-byte tag: tag, length, contents. */
static inline size_t field_size(size_t content) { return 1 + varint_size(content) + content; }

static inline uint8_t *put_varint(uint8_t *out, uint64_t value) {
    while (value >= 0x80) {
        *out++ = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    *out++ = (uint8_t)value;
    return out;
}

static inline uint8_t *put_header(uint8_t *out, uint8_t tag, size_t content) {
    *out++ = tag;
    return put_varint(out, content);
}

typedef struct feature_layout {
    const zs_feature *feature;
    size_t packed;  /* the packed payload of a float or int64 list */
    size_t list;    /* the BytesList / FloatList / Int64List message */
    size_t message; /* the Feature message */
    size_t entry;   /* the map entry */
} feature_layout;

static int compare_layouts(const void *a, const void *b) {
    const zs_feature *x = ((const feature_layout *)a)->feature, *y = ((const feature_layout *)b)->feature;
    size_t common = x->name_length < y->name_length ? x->name_length : y->name_length;
    int order = memcmp(x->name, y->name, common);
    if (order != 0) return order;
    return x->name_length < y->name_length ? -1 : x->name_length > y->name_length;
}

zs_status zs_example_serialize(const zs_example *example, uint8_t **buffer, size_t *capacity, size_t *length) {
    if (example == NULL || buffer == NULL || capacity == NULL || length == NULL) return ZS_ERR_INVALID_ARGUMENT;
    feature_layout small[16];
    feature_layout *layouts = example->count <= 16 ? small : malloc(example->count * sizeof *layouts);
    if (layouts == NULL) return ZS_ERR_NO_MEMORY;
    size_t features_size = 0;
    for (size_t i = 0; i < example->count; i++) {
        const zs_feature *feature = &example->features[i];
        feature_layout *layout = &layouts[i];
        layout->feature = feature;
        layout->packed = 0;
        switch (feature->kind) {
        case ZS_FEATURE_BYTES:
            layout->list = 0;
            for (size_t j = 0; j < feature->count; j++) layout->list += field_size(feature->bytes[j].length);
            break;
        case ZS_FEATURE_FLOAT:
            layout->packed = 4 * feature->count;
            layout->list = feature->count ? field_size(layout->packed) : 0;
            break;
        case ZS_FEATURE_INT64:
            for (size_t j = 0; j < feature->count; j++) layout->packed += varint_size((uint64_t)feature->int64s[j]);
            layout->list = feature->count ? field_size(layout->packed) : 0;
            break;
        default:
            layout->list = 0;
            break;
        }
        layout->message = feature->kind == ZS_FEATURE_UNSET ? 0 : field_size(layout->list);
        layout->entry = field_size(feature->name_length) + field_size(layout->message);
        features_size += field_size(layout->entry);
    }
    size_t total = field_size(features_size);
    if (*capacity < total || *buffer == NULL) {
        size_t grown_capacity = total < 256 ? 256 : total * 2;
        uint8_t *grown = realloc(*buffer, grown_capacity);
        if (grown == NULL) {
            if (layouts != small) free(layouts);
            return ZS_ERR_NO_MEMORY;
        }
        *buffer = grown;
        *capacity = grown_capacity;
    }
    if (example->count > 1) qsort(layouts, example->count, sizeof *layouts, compare_layouts);
    uint8_t *out = put_header(*buffer, 0x0a, features_size);
    for (size_t i = 0; i < example->count; i++) {
        const feature_layout *layout = &layouts[i];
        const zs_feature *feature = layout->feature;
        out = put_header(out, 0x0a, layout->entry);
        out = put_header(out, 0x0a, feature->name_length);
        memcpy(out, feature->name, feature->name_length);
        out += feature->name_length;
        out = put_header(out, 0x12, layout->message);
        switch (feature->kind) {
        case ZS_FEATURE_BYTES:
            out = put_header(out, 0x0a, layout->list);
            for (size_t j = 0; j < feature->count; j++) {
                out = put_header(out, 0x0a, feature->bytes[j].length);
                if (feature->bytes[j].length) memcpy(out, feature->bytes[j].data, feature->bytes[j].length);
                out += feature->bytes[j].length;
            }
            break;
        case ZS_FEATURE_FLOAT:
            out = put_header(out, 0x12, layout->list);
            if (feature->count == 0) break;
            out = put_header(out, 0x0a, layout->packed);
#if ZS_BIG_ENDIAN
            for (size_t j = 0; j < feature->count; j++) {
                uint32_t bits;
                memcpy(&bits, &feature->floats[j], 4);
                store_le32(out, bits);
                out += 4;
            }
#else
            memcpy(out, feature->floats, layout->packed);
            out += layout->packed;
#endif
            break;
        case ZS_FEATURE_INT64:
            out = put_header(out, 0x1a, layout->list);
            if (feature->count == 0) break;
            out = put_header(out, 0x0a, layout->packed);
            for (size_t j = 0; j < feature->count; j++) out = put_varint(out, (uint64_t)feature->int64s[j]);
            break;
        default:
            break;
        }
    }
    *length = (size_t)(out - *buffer);
    if (layouts != small) free(layouts);
    return *length == total ? ZS_OK : ZS_ERR_INVALID_ARGUMENT;
}

/* ---- Decoding ---- */

typedef struct wire {
    const uint8_t *data; /* the whole record: offsets in errors count from here */
    zs_error *error;
    const char *path;
    int64_t record_index;
} wire;

static zs_status wire_fail(const wire *w, size_t offset, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static zs_status wire_fail(const wire *w, size_t offset, const char *format, ...) {
    char reason[256];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(reason, sizeof reason, format, arguments);
    va_end(arguments);
    if (w->path != NULL)
        return set_error(w->error, ZS_ERR_MALFORMED_EXAMPLE, w->path, w->record_index, offset, 0,
                         "'%s': record %lld is not a tf.train.Example: %s (at byte %zu of the record); check that the "
                         "records are serialized tf.train.Example messages",
                         w->path, (long long)w->record_index, reason, offset);
    return set_error(w->error, ZS_ERR_MALFORMED_EXAMPLE, NULL, -1, offset, 0,
                     "%s (at byte %zu of the record); check that the records are serialized tf.train.Example messages",
                     reason, offset);
}

static zs_status read_varint(const wire *w, size_t *pos, size_t end, uint64_t *value) {
    size_t start = *pos, p = *pos;
    uint64_t result = 0;
    unsigned shift = 0;
    while (p < end) {
        uint8_t byte = w->data[p++];
        /* A tenth byte contributes its lowest bit only; protobuf parsers drop the rest. */
        if (shift < 64) result |= (uint64_t)(byte & 0x7f) << shift;
        if (byte < 0x80) {
            *pos = p;
            *value = result;
            return ZS_OK;
        }
        shift += 7;
        if (shift >= 70) return wire_fail(w, start, "a varint runs longer than 10 bytes");
    }
    return wire_fail(w, start, "the message ends inside a varint");
}

static inline zs_status read_tag(const wire *w, size_t *pos, size_t end, uint64_t *tag) {
    uint8_t byte = w->data[*pos];
    if (byte < 0x80) {
        *tag = byte;
        (*pos)++;
        return ZS_OK;
    }
    return read_varint(w, pos, end, tag);
}

/* The contents [*start, *stop) of the length-delimited field whose length is at *pos. */
static inline zs_status read_length_delimited(const wire *w, size_t *pos, size_t end, size_t *start, size_t *stop) {
    size_t at = *pos;
    uint64_t length;
    if (at < end && w->data[at] < 0x80) {
        length = w->data[at];
        *pos = at + 1;
    } else {
        zs_status status = read_varint(w, pos, end, &length);
        if (status != ZS_OK) return status;
    }
    if (length > end - *pos)
        return wire_fail(w, at, "a length-delimited field of %llu bytes runs past the end of its message",
                         (unsigned long long)length);
    *start = *pos;
    *stop = *pos + (size_t)length;
    *pos = *stop;
    return ZS_OK;
}

/* Skips the value of a field the decoder does not use; *pos is just after its tag. */
static zs_status skip_value(const wire *w, size_t *pos, size_t end, uint64_t tag, size_t tag_start, int depth) {
    uint64_t field = tag >> 3;
    unsigned wire_type = (unsigned)(tag & 7);
    if (field == 0 || wire_type > 5) return wire_fail(w, tag_start, "invalid field tag %llu", (unsigned long long)tag);
    size_t start = 0, stop = 0;
    uint64_t ignored;
    switch (wire_type) {
    case 0: return read_varint(w, pos, end, &ignored);
    case 2: return read_length_delimited(w, pos, end, &start, &stop);
    case 5:
        if (end - *pos < 4) return wire_fail(w, *pos, "the message ends inside a 4-byte field");
        *pos += 4;
        return ZS_OK;
    case 1:
        if (end - *pos < 8) return wire_fail(w, *pos, "the message ends inside an 8-byte field");
        *pos += 8;
        return ZS_OK;
    case 4: return wire_fail(w, *pos, "end of group %llu without its start", (unsigned long long)field);
    default: /* 3: a group, skipped up to its end tag */
        if (depth >= 64) return wire_fail(w, *pos, "groups nest more than 64 deep");
        for (;;) {
            if (*pos >= end) return wire_fail(w, *pos, "the message ends inside group %llu", (unsigned long long)field);
            size_t inner_start = *pos;
            uint64_t inner;
            zs_status status = read_varint(w, pos, end, &inner);
            if (status != ZS_OK) return status;
            if ((inner & 7) == 4 && (inner >> 3) != 0) {
                if ((inner >> 3) != field)
                    return wire_fail(w, *pos, "group %llu is closed as group %llu", (unsigned long long)field,
                                     (unsigned long long)(inner >> 3));
                return ZS_OK;
            }
            status = skip_value(w, pos, end, inner, inner_start, depth + 1);
            if (status != ZS_OK) return status;
        }
    }
}

/* Reads the tag at `pos` into `tag` (remembering where it started), returning on failure. */
#define NEXT_FIELD(w, pos, end, tag, tag_start)                                                                       \
    do {                                                                                                              \
        tag_start = pos;                                                                                              \
        zs_status s_ = read_tag(w, &pos, end, &tag);                                                                  \
        if (s_ != ZS_OK) return s_;                                                                                   \
    } while (0)

static int valid_utf8(const uint8_t *s, size_t length, size_t *bad) {
    size_t i = 0;
    while (i < length) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t code;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            code = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            code = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            code = c & 0x07;
        } else {
            *bad = i;
            return 0;
        }
        if (length - i <= need) {
            *bad = i;
            return 0;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                *bad = i;
                return 0;
            }
            code = (code << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && (code < 0x800 || (code >= 0xd800 && code <= 0xdfff))) ||
            (need == 3 && (code < 0x10000 || code > 0x10ffff))) {
            *bad = i;
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

static zs_status parse_list(const wire *w, zs_feature *feature, size_t pos, size_t end) {
    while (pos < end) {
        size_t tag_start;
        uint64_t tag;
        NEXT_FIELD(w, pos, end, tag, tag_start);
        zs_status status;
        if (feature->kind == ZS_FEATURE_BYTES && tag == 0x0a) {
            size_t start = 0, stop = 0;
            if ((status = read_length_delimited(w, &pos, end, &start, &stop)) != ZS_OK) return status;
            if (zs_feature_append_bytes(feature, w->data + start, stop - start) != ZS_OK) return ZS_ERR_NO_MEMORY;
        } else if (feature->kind == ZS_FEATURE_FLOAT && tag == 0x0a) { /* packed */
            size_t start = 0, stop = 0;
            if ((status = read_length_delimited(w, &pos, end, &start, &stop)) != ZS_OK) return status;
            size_t size = stop - start;
            if (size % 4 != 0)
                return wire_fail(w, start, "a packed float list of %zu bytes is not a multiple of 4", size);
            size_t count = size / 4;
            if (feature_reserve(feature, count) != ZS_OK) return ZS_ERR_NO_MEMORY;
#if ZS_BIG_ENDIAN
            for (size_t j = 0; j < count; j++) {
                uint32_t bits = load_le32(w->data + start + 4 * j);
                memcpy(&feature->floats[feature->count + j], &bits, 4);
            }
#else
            memcpy(feature->floats + feature->count, w->data + start, size);
#endif
            feature->count += count;
        } else if (feature->kind == ZS_FEATURE_FLOAT && tag == 0x0d) { /* unpacked */
            if (end - pos < 4) return wire_fail(w, pos, "the message ends inside a 4-byte field");
            uint32_t bits = load_le32(w->data + pos);
            float value;
            memcpy(&value, &bits, 4);
            pos += 4;
            if (zs_feature_append_float(feature, value) != ZS_OK) return ZS_ERR_NO_MEMORY;
        } else if (feature->kind == ZS_FEATURE_INT64 && tag == 0x0a) { /* packed */
            size_t start = 0, stop = 0;
            if ((status = read_length_delimited(w, &pos, end, &start, &stop)) != ZS_OK) return status;
            /* At most one value per byte. */
            if (feature_reserve(feature, stop - start) != ZS_OK) return ZS_ERR_NO_MEMORY;
            size_t p = start;
            while (p < stop) {
                uint8_t byte = w->data[p];
                uint64_t value;
                if (byte < 0x80) {
                    value = byte;
                    p++;
                } else if ((status = read_varint(w, &p, stop, &value)) != ZS_OK) {
                    return status;
                }
                feature->int64s[feature->count++] = (int64_t)value;
            }
        } else if (feature->kind == ZS_FEATURE_INT64 && tag == 0x08) { /* unpacked */
            uint64_t value;
            if ((status = read_varint(w, &pos, end, &value)) != ZS_OK) return status;
            if (zs_feature_append_int64(feature, (int64_t)value) != ZS_OK) return ZS_ERR_NO_MEMORY;
        } else if ((status = skip_value(w, &pos, end, tag, tag_start, 0)) != ZS_OK) {
            return status;
        }
    }
    return ZS_OK;
}

/* A Feature message merged into `feature` as protobuf merges a repeated message field: the same kind
 * again appends values; another kind replaces it. */
static zs_status parse_feature(const wire *w, zs_feature *feature, size_t pos, size_t end) {
    while (pos < end) {
        size_t tag_start;
        uint64_t tag;
        NEXT_FIELD(w, pos, end, tag, tag_start);
        zs_feature_kind kind = tag == 0x0a ? ZS_FEATURE_BYTES
                               : tag == 0x12 ? ZS_FEATURE_FLOAT
                               : tag == 0x1a ? ZS_FEATURE_INT64
                                             : ZS_FEATURE_UNSET;
        zs_status status;
        if (kind == ZS_FEATURE_UNSET) {
            if ((status = skip_value(w, &pos, end, tag, tag_start, 0)) != ZS_OK) return status;
            continue;
        }
        size_t start = 0, stop = 0;
        if ((status = read_length_delimited(w, &pos, end, &start, &stop)) != ZS_OK) return status;
        if (feature->kind != kind) feature_reset(feature, kind);
        if ((status = parse_list(w, feature, start, stop)) != ZS_OK) return status;
    }
    return ZS_OK;
}

static zs_status parse_entry(const wire *w, zs_example *example, size_t pos, size_t end) {
    /* The key may come after the value: find it first (the last one wins, as in protobuf). */
    size_t key_start = pos, key_stop = pos, scan = pos;
    zs_status status;
    while (scan < end) {
        size_t tag_start, start = 0, stop = 0;
        uint64_t tag;
        NEXT_FIELD(w, scan, end, tag, tag_start);
        if (tag == 0x0a || tag == 0x12) {
            if ((status = read_length_delimited(w, &scan, end, &start, &stop)) != ZS_OK) return status;
            if (tag == 0x0a) {
                key_start = start;
                key_stop = stop;
            }
        } else if ((status = skip_value(w, &scan, end, tag, tag_start, 0)) != ZS_OK) {
            return status;
        }
    }
    size_t bad;
    if (!valid_utf8(w->data + key_start, key_stop - key_start, &bad))
        return wire_fail(w, key_start, "a feature name is not valid UTF-8");
    /* A later entry for the same name replaces an earlier one. */
    zs_feature *feature = example_add(example, (const char *)w->data + key_start, key_stop - key_start, ZS_FEATURE_UNSET);
    if (feature == NULL) return ZS_ERR_NO_MEMORY;
    while (pos < end) {
        size_t tag_start, start = 0, stop = 0;
        uint64_t tag;
        NEXT_FIELD(w, pos, end, tag, tag_start);
        if (tag == 0x12) {
            if ((status = read_length_delimited(w, &pos, end, &start, &stop)) != ZS_OK) return status;
            if ((status = parse_feature(w, feature, start, stop)) != ZS_OK) return status;
        } else if ((status = skip_value(w, &pos, end, tag, tag_start, 0)) != ZS_OK) {
            return status;
        }
    }
    return ZS_OK;
}

static zs_status parse_example(const wire *w, zs_example *example, size_t length) {
    size_t pos = 0;
    while (pos < length) {
        size_t tag_start, start = 0, stop = 0;
        uint64_t tag;
        zs_status status;
        NEXT_FIELD(w, pos, length, tag, tag_start);
        if (tag != 0x0a) {
            if ((status = skip_value(w, &pos, length, tag, tag_start, 0)) != ZS_OK) return status;
            continue;
        }
        /* Features; a message field that occurs twice is merged: its map entries accumulate. */
        if ((status = read_length_delimited(w, &pos, length, &start, &stop)) != ZS_OK) return status;
        size_t inner = start;
        while (inner < stop) {
            size_t entry_tag_start, entry_start = 0, entry_stop = 0;
            uint64_t entry_tag;
            NEXT_FIELD(w, inner, stop, entry_tag, entry_tag_start);
            if (entry_tag != 0x0a) {
                if ((status = skip_value(w, &inner, stop, entry_tag, entry_tag_start, 0)) != ZS_OK) return status;
                continue;
            }
            if ((status = read_length_delimited(w, &inner, stop, &entry_start, &entry_stop)) != ZS_OK) return status;
            if ((status = parse_entry(w, example, entry_start, entry_stop)) != ZS_OK) return status;
        }
    }
    return ZS_OK;
}

static zs_status example_parse(zs_example *example, const uint8_t *data, size_t length, zs_error *error,
                               const char *path, int64_t record_index) {
    wire w = {data, error, path, record_index};
    zs_example_clear(example);
    zs_status status = parse_example(&w, example, length);
    if (status == ZS_ERR_NO_MEMORY) no_memory(error, path);
    if (status != ZS_OK) zs_example_clear(example);
    return status;
}

zs_status zs_example_parse(zs_example *example, const void *data, size_t length, zs_error *error) {
    if (example == NULL || (data == NULL && length > 0))
        return set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_example_parse: a NULL argument");
    return example_parse(example, (const uint8_t *)data, length, error, NULL, -1);
}

zs_status zs_reader_next_example(zs_reader *reader, zs_example *example, zs_error *error) {
    const uint8_t *data;
    size_t length;
    zs_status status = zs_reader_next(reader, &data, &length, error);
    if (status != ZS_OK) return status;
    return example_parse(example, data, length, error, zs_reader_path(reader), reader->record_index - 1);
}

/* One serialization buffer per thread for zs_writer_write_example. */
static _Thread_local uint8_t *serialize_buffer;
static _Thread_local size_t serialize_capacity;

zs_status zs_writer_write_example(zs_writer *writer, const zs_example *example, zs_error *error) {
    size_t length;
    zs_status status = zs_example_serialize(example, &serialize_buffer, &serialize_capacity, &length);
    if (status != ZS_OK)
        return status == ZS_ERR_NO_MEMORY ? no_memory(error, writer ? writer->path : NULL)
                                          : set_error(error, status, NULL, -1, 0, 0, "zs_example_serialize failed");
    return zs_writer_write(writer, serialize_buffer, length, error);
}

/* ==== Sharded artifacts ================================================================================ */

static const char *shard_extension(zs_compression compression) {
    return compression == ZS_COMPRESSION_GZIP ? ".tfrecord.gz"
           : compression == ZS_COMPRESSION_ZLIB ? ".tfrecord.zlib"
                                                : ".tfrecord";
}

int zs_shard_file_name(char *out, size_t capacity, const char *prefix, int index, int count,
                       zs_compression compression) {
    if (out == NULL || prefix == NULL || count <= 0 || index < 0 || index >= count) return -1;
    int length = snprintf(out, capacity, "%s-%05d-of-%05d%s", prefix, index, count, shard_extension(compression));
    return length < 0 || (size_t)length >= capacity ? -1 : length;
}

/* Parses `<prefix>-NNNNN-of-MMMMM.tfrecord[.gz|.zlib]`: 1 with *index and *count set, or 0. */
static int parse_shard_name(const char *name, const char *prefix, long long *index, long long *count) {
    size_t prefix_length = strlen(prefix);
    if (strncmp(name, prefix, prefix_length) != 0 || name[prefix_length] != '-') return 0;
    const char *p = name + prefix_length + 1;
    long long numbers[2];
    for (int part = 0; part < 2; part++) {
        const char *digits = p;
        long long value = 0;
        while (*p >= '0' && *p <= '9') {
            if (value > (LLONG_MAX - 9) / 10) return 0;
            value = value * 10 + (*p++ - '0');
        }
        if (p - digits < 5) return 0;
        numbers[part] = value;
        if (part == 0) {
            if (strncmp(p, "-of-", 4) != 0) return 0;
            p += 4;
        }
    }
    if (strcmp(p, ".tfrecord") != 0 && strcmp(p, ".tfrecord.gz") != 0 && strcmp(p, ".tfrecord.zlib") != 0) return 0;
    if (numbers[1] == 0) return 0;
    *index = numbers[0];
    *count = numbers[1];
    return 1;
}

void zs_free_paths(char **paths, size_t count) {
    if (paths == NULL) return;
    for (size_t i = 0; i < count; i++) free(paths[i]);
    free(paths);
}

typedef struct shard_entry {
    char *name;
    long long index, count;
} shard_entry;

static int compare_shards(const void *a, const void *b) {
    return strcmp(((const shard_entry *)a)->name, ((const shard_entry *)b)->name);
}

static int compare_indices(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static zs_status inconsistent(zs_error *error, const char *directory, const char *prefix, const char *problem) {
    return set_error(error, ZS_ERR_SHARDS, directory, -1, 0, 0,
                     "'%s': the %s-*.tfrecord shards do not form one complete set: %s", directory, prefix, problem);
}

zs_status zs_shard_paths(const char *directory, const char *prefix, char ***paths_out, size_t *count_out,
                         zs_error *error) {
    if (directory == NULL || paths_out == NULL || count_out == NULL)
        return set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_shard_paths: a NULL argument");
    if (prefix == NULL) prefix = "data";
    DIR *stream = opendir(directory);
    if (stream == NULL) return io_error(error, directory, "list the directory", errno);
    shard_entry *shards = NULL;
    size_t count = 0, capacity = 0;
    zs_status status = ZS_OK;
    struct dirent *entry;
    while ((entry = readdir(stream)) != NULL) {
        long long index, total;
        if (!parse_shard_name(entry->d_name, prefix, &index, &total)) continue;
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 16;
            shard_entry *grown = realloc(shards, capacity * sizeof *grown);
            if (grown == NULL) {
                status = no_memory(error, directory);
                break;
            }
            shards = grown;
        }
        shards[count].name = strdup(entry->d_name);
        if (shards[count].name == NULL) {
            status = no_memory(error, directory);
            break;
        }
        shards[count].index = index;
        shards[count].count = total;
        count++;
    }
    closedir(stream);
    char problem[1024];
    char **paths = NULL;
    if (status == ZS_OK && count == 0)
        status = set_error(error, ZS_ERR_SHARDS, directory, -1, 0, 0,
                           "'%s' holds no TFRecord shards named %s-NNNNN-of-NNNNN.tfrecord[.gz|.zlib]; check the "
                           "artifact directory and the shard prefix",
                           directory, prefix);
    if (status == ZS_OK) {
        /* The same checks, in the same order, as the Python SDK and the Swift library. */
        qsort(shards, count, sizeof *shards, compare_shards);
        long long total = shards[0].count;
        for (size_t i = 0; i < count && status == ZS_OK; i++) {
            if (shards[i].count != total) {
                snprintf(problem, sizeof problem, "%s says there are %lld shards but %s says %lld; remove the stale ones",
                         shards[0].name, total, shards[i].name, shards[i].count);
                status = inconsistent(error, directory, prefix, problem);
            }
        }
        for (size_t i = 0; i < count && status == ZS_OK; i++) {
            if (shards[i].index >= total) {
                snprintf(problem, sizeof problem, "%s has an index beyond the shard count", shards[i].name);
                status = inconsistent(error, directory, prefix, problem);
            }
            for (size_t j = 0; j < i && status == ZS_OK; j++) {
                if (shards[j].index == shards[i].index) {
                    snprintf(problem, sizeof problem, "shard %lld is there twice, as %s and %s; remove one",
                             shards[i].index, shards[j].name, shards[i].name);
                    status = inconsistent(error, directory, prefix, problem);
                }
            }
        }
        if (status == ZS_OK && (long long)count != total) {
            /* Every index is below the count and none is there twice: some are missing. */
            long long *indices = malloc(count * sizeof *indices);
            if (indices == NULL) {
                status = no_memory(error, directory);
            } else {
                for (size_t i = 0; i < count; i++) indices[i] = shards[i].index;
                qsort(indices, count, sizeof *indices, compare_indices);
                char listed[128] = "";
                size_t found = 0, next = 0;
                for (long long index = 0; index < total && found < 6; index++) {
                    if (next < count && indices[next] == index) {
                        next++;
                        continue;
                    }
                    size_t used = strlen(listed);
                    if (found < 5)
                        snprintf(listed + used, sizeof listed - used, "%s%lld", found ? ", " : "", index);
                    else
                        snprintf(listed + used, sizeof listed - used, ", ...");
                    found++;
                }
                free(indices);
                snprintf(problem, sizeof problem,
                         "%lld of %lld shards are missing (index %s); the artifact was not fully written",
                         total - (long long)count, total, listed);
                status = inconsistent(error, directory, prefix, problem);
            }
        }
    }
    if (status == ZS_OK) {
        /* In index order (names sort that way only while the numbers have the same width). */
        paths = calloc(count, sizeof *paths);
        if (paths == NULL) status = no_memory(error, directory);
        size_t directory_length = strlen(directory);
        const char *separator = directory_length && directory[directory_length - 1] == '/' ? "" : "/";
        for (size_t i = 0; i < count && status == ZS_OK; i++) {
            size_t size = directory_length + strlen(shards[i].name) + 2;
            char *path = malloc(size);
            if (path == NULL) {
                status = no_memory(error, directory);
                break;
            }
            snprintf(path, size, "%s%s%s", directory, separator, shards[i].name);
            paths[shards[i].index] = path;
        }
        if (status != ZS_OK) {
            zs_free_paths(paths, count);
            paths = NULL;
        }
    }
    for (size_t i = 0; i < count; i++) free(shards[i].name);
    free(shards);
    if (status != ZS_OK) return status;
    *paths_out = paths;
    *count_out = count;
    return ZS_OK;
}

struct zs_sharded_writer {
    zs_writer **writers;
    int count;
    uint64_t record_count;
};

zs_sharded_writer *zs_sharded_writer_open(const char *directory, const char *prefix, int shards,
                                          zs_compression compression, zs_error *error) {
    if (directory == NULL || shards <= 0) {
        set_error(error, ZS_ERR_INVALID_ARGUMENT, directory, -1, 0, 0,
                  "zs_sharded_writer_open: a directory and a positive shard count are needed (got %d shards)", shards);
        return NULL;
    }
    if (prefix == NULL) prefix = "data";
    zs_sharded_writer *writer = calloc(1, sizeof *writer);
    if (writer) writer->writers = calloc((size_t)shards, sizeof(zs_writer *));
    if (writer == NULL || writer->writers == NULL) {
        free(writer);
        no_memory(error, directory);
        return NULL;
    }
    writer->count = shards;
    for (int i = 0; i < shards; i++) {
        char name[512], path[4096];
        if (zs_shard_file_name(name, sizeof name, prefix, i, shards, compression) < 0 ||
            snprintf(path, sizeof path, "%s/%s", directory, name) >= (int)sizeof path) {
            set_error(error, ZS_ERR_INVALID_ARGUMENT, directory, -1, 0, 0, "'%s': the shard path is too long", directory);
            zs_sharded_writer_close(writer, NULL);
            return NULL;
        }
        writer->writers[i] = zs_writer_open(path, compression, -1, error);
        if (writer->writers[i] == NULL) {
            zs_sharded_writer_close(writer, NULL);
            return NULL;
        }
    }
    return writer;
}

zs_status zs_sharded_writer_write(zs_sharded_writer *writer, const void *data, size_t length, zs_error *error) {
    if (writer == NULL) return set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_sharded_writer_write: NULL");
    zs_status status = zs_writer_write(writer->writers[writer->record_count % (uint64_t)writer->count], data, length, error);
    if (status == ZS_OK) writer->record_count++;
    return status;
}

zs_status zs_sharded_writer_write_example(zs_sharded_writer *writer, const zs_example *example, zs_error *error) {
    if (writer == NULL)
        return set_error(error, ZS_ERR_INVALID_ARGUMENT, NULL, -1, 0, 0, "zs_sharded_writer_write_example: NULL");
    zs_status status =
        zs_writer_write_example(writer->writers[writer->record_count % (uint64_t)writer->count], example, error);
    if (status == ZS_OK) writer->record_count++;
    return status;
}

zs_status zs_sharded_writer_close(zs_sharded_writer *writer, zs_error *error) {
    if (writer == NULL) return ZS_OK;
    zs_status first = ZS_OK;
    for (int i = 0; i < writer->count; i++) {
        zs_error local;
        zs_status status = zs_writer_close(writer->writers[i], &local);
        if (status != ZS_OK && first == ZS_OK) {
            first = status;
            if (error) *error = local;
        }
    }
    free(writer->writers);
    free(writer);
    return first;
}
