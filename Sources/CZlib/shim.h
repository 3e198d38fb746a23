// zlib (`crc32`): S3 multipart uploads declare CRC32 part checksums, as the AWS CLI does.
#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <zlib.h>
#endif
