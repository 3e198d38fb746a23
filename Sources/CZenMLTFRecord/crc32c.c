/*
 * CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
 *
 * Three implementations, chosen once at run time:
 *   - x86-64: the SSE4.2 `crc32` instruction, 8 bytes at a time (`_mm_crc32_u64`);
 *   - aarch64: the ARMv8 CRC32 extension (`__crc32cd`);
 *   - anywhere: slicing-by-8 tables.
 * All three compute the same function; the tests check that on random buffers.
 *
 * Why three streams: the `crc32` instruction has a latency of about 3 cycles but can start one per
 * cycle, so a single chain of them waits on itself (~8 bytes per 3 cycles). The hardware paths cut
 * a long buffer into three adjacent blocks of B bytes, run one independent chain per block and
 * join the results. The join uses linearity: with raw registers (no pre- or post-inversion), the
 * register after data D from register r is shift(r, |D|) ^ reg(0, D), where shift(r, n) is r fed n
 * zero bytes. So reg(r, A B C) = shift(shift(reg(r, A), B) ^ reg(0, B), B) ^ reg(0, C). shift(., B)
 * is linear in its 32-bit argument; it is tabulated once per block size as four 256-entry tables
 * (one per byte of the argument), so a join costs eight lookups.
 */

#include "CZenMLTFRecord.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define CZENML_HAVE_SSE42_PATH 1
#include <nmmintrin.h>
#elif defined(__aarch64__)
#define CZENML_HAVE_ARMV8_PATH 1
#include <arm_acle.h>
#if defined(__linux__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif
#endif

#define CZENML_CRC32C_POLY 0x82F63B78u

/* ---- Portable: slicing-by-8 ------------------------------------------------------------------ */

/* table[0] is the classic byte table; table[k][n] is the CRC of byte n followed by k zero bytes. */
static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

/* The block sizes of the three-stream hardware loops: big blocks for long buffers, small ones for
 * the rest and for medium buffers (a few hundred bytes, like TFRecord records). Multiples of 8. */
#define CZENML_CRC32C_LONG_BLOCK 4096
#define CZENML_CRC32C_SHORT_BLOCK 256

/* crc32c_shift_long[k][n] (and _short): the raw register that byte n, placed as byte k of a register,
 * becomes after the block size in zero bytes. XOR the four entries for a register's bytes. */
static uint32_t crc32c_shift_long[4][256];
static uint32_t crc32c_shift_short[4][256];

static void crc32c_build_shift_table(uint32_t table[4][256], size_t zero_bytes) {
    /* The images of the 32 single-bit registers, then every byte value by linearity. */
    uint32_t basis[32];
    for (int bit = 0; bit < 32; bit++) {
        uint32_t reg = (uint32_t)1 << bit;
        for (size_t i = 0; i < zero_bytes; i++) reg = crc32c_table[0][reg & 0xff] ^ (reg >> 8);
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

static inline uint32_t crc32c_shift(const uint32_t table[4][256], uint32_t reg) {
    return table[0][reg & 0xff] ^ table[1][(reg >> 8) & 0xff] ^ table[2][(reg >> 16) & 0xff] ^ table[3][reg >> 24];
}

static void crc32c_build_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 1) ? (crc >> 1) ^ CZENML_CRC32C_POLY : crc >> 1;
        }
        crc32c_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        for (int k = 1; k < 8; k++) {
            uint32_t previous = crc32c_table[k - 1][n];
            crc32c_table[k][n] = (previous >> 8) ^ crc32c_table[0][previous & 0xff];
        }
    }
    crc32c_build_shift_table(crc32c_shift_long, CZENML_CRC32C_LONG_BLOCK);
    crc32c_build_shift_table(crc32c_shift_short, CZENML_CRC32C_SHORT_BLOCK);
}

/* Little-endian loads that compile to one move on little-endian CPUs and stay right on others. */
static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint32_t crc32c_portable(uint32_t crc, const uint8_t *p, size_t length) {
    pthread_once(&crc32c_table_once, crc32c_build_tables);
    const uint32_t (*t)[256] = (const uint32_t (*)[256])crc32c_table;
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

/* ---- x86-64: SSE4.2 ---------------------------------------------------------------------------- */

#if CZENML_HAVE_SSE42_PATH
/* Three chains over adjacent blocks of `block` bytes each, as many rounds as fit; returns the raw
 * register. Inlined with a constant `block`, so each copy's loop has fixed offsets. */
__attribute__((target("sse4.2"), always_inline))
static inline uint64_t crc32c_sse42_3way(uint64_t state, const uint8_t **next, size_t *length, size_t block,
                                         const uint32_t shift[4][256]) {
    const uint8_t *p = *next;
    size_t left = *length;
    while (left >= 3 * block) {
        uint64_t a = state, b = 0, c = 0;
        for (size_t i = 0; i < block; i += 8) {
            uint64_t wa, wb, wc;
            memcpy(&wa, p + i, 8);
            memcpy(&wb, p + block + i, 8);
            memcpy(&wc, p + 2 * block + i, 8);
            a = _mm_crc32_u64(a, wa);
            b = _mm_crc32_u64(b, wb);
            c = _mm_crc32_u64(c, wc);
        }
        state = crc32c_shift(shift, crc32c_shift(shift, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
        p += 3 * block;
        left -= 3 * block;
    }
    *next = p;
    *length = left;
    return state;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t length) {
    uint64_t state = ~crc;
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        state = _mm_crc32_u8((uint32_t)state, *p++);
        length--;
    }
    if (length >= 3 * CZENML_CRC32C_SHORT_BLOCK) {
        pthread_once(&crc32c_table_once, crc32c_build_tables);
        state = crc32c_sse42_3way(state, &p, &length, CZENML_CRC32C_LONG_BLOCK, crc32c_shift_long);
        state = crc32c_sse42_3way(state, &p, &length, CZENML_CRC32C_SHORT_BLOCK, crc32c_shift_short);
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        state = _mm_crc32_u64(state, word);
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        state = _mm_crc32_u8((uint32_t)state, *p++);
        length--;
    }
    return ~(uint32_t)state;
}

static int cpu_has_sse42(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#endif

/* ---- aarch64: ARMv8 CRC32 extension ------------------------------------------------------------ */

#if CZENML_HAVE_ARMV8_PATH
/* The same three-chain scheme as the SSE4.2 path (see the top of the file). */
__attribute__((target("crc"), always_inline))
static inline uint32_t crc32c_armv8_3way(uint32_t state, const uint8_t **next, size_t *length, size_t block,
                                         const uint32_t shift[4][256]) {
    const uint8_t *p = *next;
    size_t left = *length;
    while (left >= 3 * block) {
        uint32_t a = state, b = 0, c = 0;
        for (size_t i = 0; i < block; i += 8) {
            uint64_t wa, wb, wc;
            memcpy(&wa, p + i, 8);
            memcpy(&wb, p + block + i, 8);
            memcpy(&wc, p + 2 * block + i, 8);
            a = __crc32cd(a, wa);
            b = __crc32cd(b, wb);
            c = __crc32cd(c, wc);
        }
        state = crc32c_shift(shift, crc32c_shift(shift, a) ^ b) ^ c;
        p += 3 * block;
        left -= 3 * block;
    }
    *next = p;
    *length = left;
    return state;
}

__attribute__((target("crc")))
static uint32_t crc32c_armv8(uint32_t crc, const uint8_t *p, size_t length) {
    crc = ~crc;
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        crc = __crc32cb(crc, *p++);
        length--;
    }
    if (length >= 3 * CZENML_CRC32C_SHORT_BLOCK) {
        pthread_once(&crc32c_table_once, crc32c_build_tables);
        crc = crc32c_armv8_3way(crc, &p, &length, CZENML_CRC32C_LONG_BLOCK, crc32c_shift_long);
        crc = crc32c_armv8_3way(crc, &p, &length, CZENML_CRC32C_SHORT_BLOCK, crc32c_shift_short);
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc = __crc32cd(crc, word);
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        crc = __crc32cb(crc, *p++);
        length--;
    }
    return ~crc;
}

static int cpu_has_armv8_crc(void) {
#if defined(__APPLE__)
    return 1; /* Every Apple arm64 CPU has the CRC32 extension. */
#elif defined(__linux__) && defined(HWCAP_CRC32)
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#elif defined(__ARM_FEATURE_CRC32)
    return 1;
#else
    return 0;
#endif
}
#endif

/* ---- Dispatch ------------------------------------------------------------------------------------ */

/* -1 until detected; detection is idempotent, so a race only repeats it. */
static _Atomic int detected_hardware_impl = -1;
static _Atomic int forced_portable = 0;

czenml_crc32c_impl czenml_crc32c_hardware_impl(void) {
    int impl = atomic_load_explicit(&detected_hardware_impl, memory_order_relaxed);
    if (impl < 0) {
        impl = CZENML_CRC32C_PORTABLE;
#if CZENML_HAVE_SSE42_PATH
        if (cpu_has_sse42()) impl = CZENML_CRC32C_SSE42;
#elif CZENML_HAVE_ARMV8_PATH
        if (cpu_has_armv8_crc()) impl = CZENML_CRC32C_ARMV8;
#endif
        atomic_store_explicit(&detected_hardware_impl, impl, memory_order_relaxed);
    }
    return (czenml_crc32c_impl)impl;
}

czenml_crc32c_impl czenml_crc32c_active_impl(void) {
    if (atomic_load_explicit(&forced_portable, memory_order_relaxed)) return CZENML_CRC32C_PORTABLE;
    return czenml_crc32c_hardware_impl();
}

void czenml_crc32c_force_portable(int force) {
    atomic_store_explicit(&forced_portable, force != 0, memory_order_relaxed);
}

uint32_t czenml_crc32c_extend_using(czenml_crc32c_impl impl, uint32_t crc, const void *data, size_t length) {
    const uint8_t *bytes = (const uint8_t *)data;
    if (length == 0) return crc;
    if (impl != CZENML_CRC32C_PORTABLE && impl == czenml_crc32c_hardware_impl()) {
#if CZENML_HAVE_SSE42_PATH
        return crc32c_sse42(crc, bytes, length);
#elif CZENML_HAVE_ARMV8_PATH
        return crc32c_armv8(crc, bytes, length);
#endif
    }
    return crc32c_portable(crc, bytes, length);
}

uint32_t czenml_crc32c_extend(uint32_t crc, const void *data, size_t length) {
    return czenml_crc32c_extend_using(czenml_crc32c_active_impl(), crc, data, length);
}
