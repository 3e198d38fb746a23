#ifndef CZENML_TFRECORD_H
#define CZENML_TFRECORD_H

/*
 * The C half of ZenMLTFRecord: CRC-32C (Castagnoli) with hardware acceleration chosen at run time,
 * and the few zlib entry points that are macros in <zlib.h> and so cannot be called from Swift.
 */

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CRC-32C ---------------------------------------------------------------------------------- */

/** A CRC-32C implementation. */
typedef enum czenml_crc32c_impl {
    /** Slicing-by-8 tables: any CPU. */
    CZENML_CRC32C_PORTABLE = 0,
    /** The SSE4.2 `crc32` instruction (x86-64). */
    CZENML_CRC32C_SSE42 = 1,
    /** The ARMv8 CRC32 extension's `crc32c*` instructions (aarch64). */
    CZENML_CRC32C_ARMV8 = 2,
} czenml_crc32c_impl;

/**
 * Extends `crc`, the finished CRC-32C of some preceding bytes (0 for none), over `length` more
 * bytes at `data`, with the implementation `czenml_crc32c_active_impl()` names.
 * `czenml_crc32c_extend(0, "123456789", 9) == 0xE3069283`.
 */
uint32_t czenml_crc32c_extend(uint32_t crc, const void *data, size_t length);

/**
 * `czenml_crc32c_extend` with a chosen implementation. An implementation this CPU lacks is
 * replaced by the portable one, so the result is always correct.
 */
uint32_t czenml_crc32c_extend_using(czenml_crc32c_impl impl, uint32_t crc, const void *data, size_t length);

/** The hardware implementation this CPU supports, or `CZENML_CRC32C_PORTABLE` if none. */
czenml_crc32c_impl czenml_crc32c_hardware_impl(void);

/** The implementation `czenml_crc32c_extend` uses: the hardware one unless forced portable. */
czenml_crc32c_impl czenml_crc32c_active_impl(void);

/** Makes `czenml_crc32c_extend` use the portable implementation (nonzero) or the best one (0). */
void czenml_crc32c_force_portable(int force);

/* ---- zlib --------------------------------------------------------------------------------------- */

/** `deflateInit2` (a macro in <zlib.h>) with the deflate method and default strategy. */
static inline int czenml_deflate_init(z_streamp stream, int level, int window_bits, int mem_level) {
    return deflateInit2(stream, level, Z_DEFLATED, window_bits, mem_level, Z_DEFAULT_STRATEGY);
}

/** `inflateInit2` (a macro in <zlib.h>). */
static inline int czenml_inflate_init(z_streamp stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}

#ifdef __cplusplus
}
#endif

#endif /* CZENML_TFRECORD_H */
