"""zenml_step: a small helper for writing zenml-run steps in Python.

It implements the step contract, version 1 (see protocol/SPEC.md), and reads and writes the
TFRecord files of `tf.train.Example` records through which steps exchange data, with the
standard library only (Python 3.9+). A bundle copies this one file (its digest then covers it)
rather than linking to it.

The contract
------------

A step is a program that reads one JSON request on stdin, writes its outputs into the
directories the request names, and prints one JSON response on stdout:

    from zenml_step import read_request, write_response, fail, log

    request = read_request()                      # exits if the contract version is not 1
    rows = request["config"]["rows"]
    out_dir = request["outputs"]["table"]["path"]
    log("writing", rows, "rows to", out_dir)      # logs go to stderr, never stdout
    ...                                           # write files into out_dir
    write_response(outputs={"table": {"rows": rows}}, metrics={"seconds": 1.5})

Rules worth remembering (the host enforces them):

* stdout carries exactly one JSON object: the response. Use `log()` (stderr) for everything
  else; a stray `print()` makes the step fail.
* Every declared output directory must contain at least one file when the step succeeds, and
  nothing may be written next to the output directories.
* Input artifact directories are read-only.

Examples in TFRecord files
--------------------------

An `Examples` artifact is a directory of TFRecord shards named
`data-00000-of-00004.tfrecord` (`.tfrecord.gz` for GZIP, `.tfrecord.zlib` for ZLIB), each a
sequence of serialized `tf.train.Example` messages. The files are byte-for-byte what
TensorFlow's `tf.io.TFRecordWriter` writes, and TensorFlow reads them back:

    from zenml_step import read_examples, ExampleWriter, Feature

    with ExampleWriter(request["outputs"]["examples"]["path"], shards=2, compression="GZIP") as out:
        for example in read_examples(request["inputs"]["data"][0]["path"]):
            x = example["x"].values                          # [0.5, 1.5]
            example["x2"] = Feature.float_list([v * 2 for v in x])
            out.write(example)
        out.write({"id": 7, "x": [0.5, 1.5], "label": "cat"})   # or a dict: kinds are inferred

`example.to_dict()` gives `{"id": [7], "x": [0.5, 1.5], "label": [b"cat"]}`; it drops the
kind of empty lists, so write Examples (not dicts) back when features may be empty.

Many records at once, as ML code wants them (one array per feature, like
`tf.io.parse_example`): `read_example_batches(path, batch_size=1024)` yields `ExampleBatch`es,
`batch["x"].values` being every record's x values in order (`array('f')`, `array('q')` or a
list of bytes) and `batch["x"].row_splits` where each record's start. It is several times faster
than `read_examples` when records share a layout, and gives the same values.

Lower down: `TFRecordReader` / `TFRecordWriter` (one file of raw records; `read_batch()` and
`write_records()` for many records at once), `ExampleBatch.decode(records)`, `Example` and
`Feature` (the message, with `Example.parse` / `example.serialize()`), `read_records`,
`shard_paths`, `shard_file_name`, `crc32c`.

What a reader guarantees: both CRCs of every record (length header and data) are checked, and a
reader never returns bytes that failed a check or silently stops early. Damage raises a
`TFRecordError` subclass naming the file and the 0-based record index (which is also the number
of intact records before it): `CorruptLengthError`, `CorruptDataError`, `TruncatedRecordError`,
`RecordTooLargeError`, `CorruptCompressedStreamError`, `MalformedExampleError`. Byte offsets in
errors count bytes of the uncompressed record stream. Compression (none, GZIP or ZLIB, each one
stream over the whole file as TensorFlow writes it) is detected from the first bytes.

CRC32C uses the `crc32c` package from PyPI when it is installed (several GB/s) and a
pure-Python slicing-by-8 table otherwise (a few MB/s: enough for small artifacts; install
`crc32c` in the step's environment for large ones). `CRC32C_IMPLEMENTATION` says which.
"""

import json
import math
import operator
import os
import re
import struct
import sys
import zlib
from array import array as _array
from itertools import accumulate as _accumulate, chain as _chain, groupby as _groupby
from operator import itemgetter as _itemgetter

__all__ = [
    # The step contract.
    "CONTRACT_VERSION", "read_request", "write_response", "fail", "log",
    # CRC32C.
    "crc32c", "crc32c_python", "masked_crc32c", "mask_crc", "unmask_crc", "CRC32C_IMPLEMENTATION",
    # TFRecord files.
    "NONE", "GZIP", "ZLIB", "detect_compression", "TFRecordReader", "TFRecordWriter", "read_records",
    # tf.train.Example.
    "Example", "Feature", "ExampleDecodeError",
    # Sharded artifacts and conveniences.
    "shard_file_name", "parse_shard_file_name", "shard_paths", "read_examples", "write_examples",
    "ExampleWriter",
    # Errors.
    "TFRecordError", "CorruptRecordError", "CorruptLengthError", "CorruptDataError", "TruncatedRecordError",
    "RecordTooLargeError", "CorruptCompressedStreamError", "MalformedExampleError", "WriterClosedError",
    "ShardError", "NoShardsError", "InconsistentShardsError",
]

#: The step contract version this helper speaks.
CONTRACT_VERSION = 1

#: Exit code for a request this helper cannot use (bad JSON, another contract version).
EXIT_BAD_REQUEST = 2


def log(*args):
    """Prints its arguments, like print(), to stderr: the step's log."""
    print(*args, file=sys.stderr, flush=True)


def read_request(stream=None):
    """Reads the request (one JSON object) from stdin and returns it as a dict.

    Exits with a message on stderr and exit code 2 when stdin is not a JSON object or when the
    request's `contract` is not 1: a step must never guess at a contract it does not know.
    """
    stream = sys.stdin if stream is None else stream
    text = stream.read()
    try:
        request = json.loads(text)
    except ValueError as error:
        _exit_bad_request("the request on stdin is not JSON (%s)" % error)
    if not isinstance(request, dict):
        _exit_bad_request("the request on stdin must be a JSON object, got %s" % type(request).__name__)
    contract = request.get("contract")
    # `type(...) is int` because True == 1 in Python.
    if type(contract) is not int or contract != CONTRACT_VERSION:
        _exit_bad_request(
            "this step speaks step contract version %d, but the request has contract %s; "
            "use a zenml-run that speaks version %d or update the step"
            % (CONTRACT_VERSION, json.dumps(contract), CONTRACT_VERSION))
    return request


def write_response(status="ok", outputs=None, metrics=None, message=None):
    """Prints the response on stdout.

    status   -- "ok" or "error".
    outputs  -- {output name: {property name: str | int | float | bool}}: properties recorded
                with each output artifact. Only declared outputs may appear.
    metrics  -- {metric name: int | float}: numbers recorded with the execution.
    message  -- a short text for people (required in spirit when status is "error").

    Raises ValueError for a response the host would reject, so that the mistake shows up in
    the step's own traceback rather than as a host error.
    """
    if status not in ("ok", "error"):
        raise ValueError('status must be "ok" or "error", not %r' % (status,))
    response = {"status": status}
    if outputs:
        entries = {}
        for name, properties in outputs.items():
            if not isinstance(properties, dict):
                raise ValueError("outputs[%r] must be a dict of properties" % (name,))
            for key, value in properties.items():
                if not _is_scalar(value):
                    raise ValueError(
                        "property %r of output %r must be a string, number or boolean, not %s"
                        % (key, name, type(value).__name__))
            entries[name] = {"properties": dict(properties)}
        response["outputs"] = entries
    if metrics:
        for key, value in metrics.items():
            if not _is_number(value):
                raise ValueError("metric %r must be a finite number, not %r" % (key, value))
        response["metrics"] = dict(metrics)
    if message is not None:
        response["message"] = str(message)
    sys.stdout.write(json.dumps(response, allow_nan=False) + "\n")
    sys.stdout.flush()


def fail(message, exit_code=1):
    """Reports a failure: logs the message, prints an error response, and exits (code 1)."""
    log("error:", message)
    write_response(status="error", message=message)
    sys.exit(exit_code)




def _exit_bad_request(message):
    log("error:", message)
    sys.exit(EXIT_BAD_REQUEST)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value):
    return isinstance(value, (str, bool)) or _is_number(value)


# ==============================================================================================
# CRC32C
# ==============================================================================================
#
# CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
# TFRecord framing stores it "masked": ((crc >> 15) | (crc << 17)) + 0xA282EAD8 (mod 2^32).

_CRC32C_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF

_crc_tables = None  # Eight 256-entry tables for slicing-by-8, built on first use.


def _build_crc_tables():
    global _crc_tables
    table0 = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC32C_POLY if crc & 1 else crc >> 1
        table0.append(crc)
    # tables[k][n] is the CRC state after byte n followed by k zero bytes.
    tables = [table0]
    for _ in range(7):
        previous = tables[-1]
        tables.append([(entry >> 8) ^ table0[entry & 0xFF] for entry in previous])
    _crc_tables = tables
    return tables


_unpack_two_u32 = struct.Struct("<II").iter_unpack


def crc32c_python(data, crc=0):
    """The CRC-32C of `data` (any bytes-like object) in pure Python, continuing `crc`.

    `crc` is the finished CRC of the bytes before `data` (0 for none), so
    `crc32c_python(b, crc32c_python(a)) == crc32c_python(a + b)`. Slicing-by-8: about 2x a
    byte-at-a-time loop, a few MB/s. `crc32c()` uses the `crc32c` package instead when it is
    installed; both compute the same function.
    """
    t0, t1, t2, t3, t4, t5, t6, t7 = _crc_tables or _build_crc_tables()
    view = memoryview(data).cast("B")
    length = len(view)
    whole = length - (length & 7)
    crc = (crc & _U32) ^ _U32
    if whole:
        for low, high in _unpack_two_u32(view[:whole]):
            low ^= crc
            crc = (t7[low & 0xFF] ^ t6[(low >> 8) & 0xFF] ^ t5[(low >> 16) & 0xFF] ^ t4[low >> 24]
                   ^ t3[high & 0xFF] ^ t2[(high >> 8) & 0xFF] ^ t1[(high >> 16) & 0xFF] ^ t0[high >> 24])
    for byte in view[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


try:
    import warnings as _warnings

    with _warnings.catch_warnings():
        # The package warns when it falls back to its own software implementation; fine here.
        _warnings.simplefilter("ignore")
        import crc32c as _crc32c_package
    _crc32c_function = _crc32c_package.crc32c
    #: Which CRC-32C implementation `crc32c()` uses.
    CRC32C_IMPLEMENTATION = "crc32c package (%s)" % (
        "hardware" if getattr(_crc32c_package, "hardware_based", False) else "software")
except ImportError:  # pragma: no cover - depends on the environment
    _crc32c_package = None
    _crc32c_function = crc32c_python
    CRC32C_IMPLEMENTATION = "pure Python (slicing-by-8)"


def crc32c(data, crc=0):
    """The CRC-32C (Castagnoli) of `data` (any bytes-like object), continuing `crc`.

    `crc` is the finished CRC of the bytes before `data` (0 for none), so
    `crc32c(b, crc32c(a)) == crc32c(a + b)`; `crc32c(b"123456789") == 0xE3069283`.
    Runs on the `crc32c` package when it is installed, on `crc32c_python` otherwise.
    """
    return _crc32c_function(data, crc)


def mask_crc(crc):
    """TensorFlow's masked form of a CRC, the one TFRecord files store."""
    return ((((crc & _U32) >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def unmask_crc(masked):
    """The CRC a masked value was made from: `unmask_crc(mask_crc(c)) == c`."""
    rotated = (masked - _MASK_DELTA) & _U32
    return ((rotated >> 17) | (rotated << 15)) & _U32


def masked_crc32c(data):
    """The masked CRC-32C of `data`, as TFRecord framing stores it."""
    crc = _crc32c_function(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


# ==============================================================================================
# Errors
# ==============================================================================================


def _intact_prefix(index):
    if index == 0:
        return "no record before it was read"
    if index == 1:
        return "the 1 record before it is intact"
    return "the %d records before it are intact" % index


class TFRecordError(Exception):
    """Reading or writing TFRecord data failed.

    `path` is the file (or artifact directory) concerned, `record_index` the 0-based index of the
    record concerned or None. The record index is also the number of intact records before it.
    Operating-system failures (a missing file, a full disk) are raised as the usual `OSError`.
    """

    def __init__(self, message, path=None, record_index=None):
        super().__init__(message)
        self.path = path
        self.record_index = record_index


class CorruptRecordError(TFRecordError):
    """A record fails a CRC32C check: the base of `CorruptLengthError` and `CorruptDataError`.

    `offset` is the byte offset, in the uncompressed record stream, of the part that failed.
    """

    def __init__(self, message, path, record_index, offset):
        super().__init__(message, path, record_index)
        self.offset = offset


class CorruptLengthError(CorruptRecordError):
    """The CRC of a record's 8-byte length header does not match: this record and every later one
    are unreadable, since where they start cannot be trusted."""

    def __init__(self, path, record_index, offset):
        super().__init__(
            "%r: the length header of record %d (at byte %d) fails its CRC32C check, so this record and "
            "all after it are unreadable; %s. If the file is compressed, check the compression setting; "
            "otherwise the file is damaged: re-create or re-copy it."
            % (path, record_index, offset, _intact_prefix(record_index)), path, record_index, offset)


class CorruptDataError(CorruptRecordError):
    """The CRC of a record's data does not match (its length header was intact). `offset` is where
    the record's data starts, `length` its announced length."""

    def __init__(self, path, record_index, offset, length):
        super().__init__(
            "%r: the data of record %d (%d bytes at byte %d) fails its CRC32C check; %s. The file is "
            "damaged: re-create or re-copy it." % (path, record_index, length, offset, _intact_prefix(record_index)),
            path, record_index, offset)
        self.length = length


class TruncatedRecordError(TFRecordError):
    """The stream ends inside a record: `available_bytes` of the `expected_bytes` its framing needs
    (12 header bytes, or header, data and 4-byte data CRC) are there. `offset` is where the record
    starts."""

    def __init__(self, path, record_index, offset, expected_bytes, available_bytes):
        super().__init__(
            "%r: record %d (at byte %d) is cut short: the file ends after %d of its %d bytes; %s. The file "
            "was probably not finished (an interrupted write or copy): re-create or re-copy it."
            % (path, record_index, offset, available_bytes, expected_bytes, _intact_prefix(record_index)),
            path, record_index)
        self.offset = offset
        self.expected_bytes = expected_bytes
        self.available_bytes = available_bytes


class RecordTooLargeError(TFRecordError):
    """A record's length header (with a valid CRC) announces more bytes than the reader's
    `max_record_length`; nothing was allocated for it."""

    def __init__(self, path, record_index, offset, length, limit):
        super().__init__(
            "%r: record %d (at byte %d) announces %d bytes, more than the reader's limit of %d. If the file "
            "really holds records this large, pass a larger max_record_length; otherwise the file is damaged."
            % (path, record_index, offset, length, limit), path, record_index)
        self.offset = offset
        self.length = length
        self.limit = limit


class CorruptCompressedStreamError(TFRecordError):
    """The GZIP or ZLIB stream is damaged or ends early; `reason` is zlib's account of it."""

    def __init__(self, path, compression, record_index, reason):
        super().__init__(
            "%r: the %s stream is damaged or incomplete while reading record %d (%s); %s. Check that the "
            "file really is %s-compressed and complete, or re-create it."
            % (path, compression, record_index, reason, _intact_prefix(record_index), compression),
            path, record_index)
        self.compression = compression
        self.reason = reason


class MalformedExampleError(TFRecordError):
    """A record was read intact but is not a serialized `tf.train.Example`. `offset` is the byte
    within the record where the problem is, `reason` what it is."""

    def __init__(self, path, record_index, error):
        super().__init__("%r: record %d is not a tf.train.Example: %s" % (path, record_index, error),
                         path, record_index)
        self.offset = error.offset
        self.reason = error.reason


class WriterClosedError(TFRecordError):
    """A writer was used after `close()` or after an earlier write failed."""

    def __init__(self, path):
        super().__init__("%r: the TFRecord writer is closed (closed explicitly or by an earlier error); "
                         "open a new one" % (path,), path)


class ShardError(TFRecordError):
    """An artifact directory's shards cannot be read as one set."""


class NoShardsError(ShardError):
    """An artifact directory holds no `<prefix>-NNNNN-of-NNNNN.tfrecord[.gz|.zlib]` files."""

    def __init__(self, directory, prefix):
        super().__init__(
            "%r holds no TFRecord shards named %s-NNNNN-of-NNNNN.tfrecord[.gz|.zlib]; check the artifact "
            "directory and the shard prefix" % (directory, prefix), directory)
        self.prefix = prefix


class InconsistentShardsError(ShardError):
    """An artifact directory's shard files do not form one complete set; `problem` says how."""

    def __init__(self, directory, prefix, problem):
        super().__init__("%r: the %s-*.tfrecord shards do not form one complete set: %s"
                         % (directory, prefix, problem), directory)
        self.prefix = prefix
        self.problem = problem


class ExampleDecodeError(ValueError):
    """Bytes that are not a valid serialized `tf.train.Example`: `offset` is where in them the
    problem was found, `reason` what it is."""

    def __init__(self, offset, reason):
        super().__init__("%s (at byte %d of the record); check that the records are serialized "
                         "tf.train.Example messages" % (reason, offset))
        self.offset = offset
        self.reason = reason


# ==============================================================================================
# TFRecord files
# ==============================================================================================
#
# A TFRecord file is a sequence of records, each framed as
#     uint64 length | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)
# all little-endian. A GZIP or ZLIB file is one compressed stream over that whole byte sequence.

#: No compression (`compression_type=""` or `"NONE"` in TensorFlow).
NONE = "NONE"
#: A gzip stream (RFC 1952) over the whole file (`compression_type="GZIP"`).
GZIP = "GZIP"
#: A zlib stream (RFC 1950) over the whole file (`compression_type="ZLIB"`).
ZLIB = "ZLIB"

#: zlib's windowBits for each compression, as TensorFlow uses them.
_WINDOW_BITS = {GZIP: 16 + zlib.MAX_WBITS, ZLIB: zlib.MAX_WBITS}
#: The shard file name suffix for each compression. Readers never rely on it: they look at the bytes.
_EXTENSIONS = {NONE: ".tfrecord", GZIP: ".tfrecord.gz", ZLIB: ".tfrecord.zlib"}

#: The largest record a reader accepts by default (1 GiB).
DEFAULT_MAX_RECORD_LENGTH = 1 << 30
#: The size of reads and writes, and so roughly the memory a reader or writer holds.
DEFAULT_BUFFER_SIZE = 256 << 10

_HEADER_SIZE = 12
_FOOTER_SIZE = 4
_unpack_length_and_crc = struct.Struct("<QI").unpack
_unpack_u32_at = struct.Struct("<I").unpack_from
_pack_u32 = struct.Struct("<I").pack
_pack_u64 = struct.Struct("<Q").pack

# Framing headers are pure functions of the length, and most files repeat a few lengths, so both
# directions remember recent ones: writers skip computing the header CRC, readers skip checking
# a header whose exact 12 bytes were already found valid. Bounded, so memory stays flat.
_HEADER_FOR_LENGTH = {}
_first = _itemgetter(0)
_chain_from_iterable = _chain.from_iterable
_LENGTH_FOR_VALID_HEADER = {}
_HEADER_CACHE_LIMIT = 4096


def _framing_header(length):
    header = _HEADER_FOR_LENGTH.get(length)
    if header is None:
        length_bytes = _pack_u64(length)
        header = length_bytes + _pack_u32(masked_crc32c(length_bytes))
        if len(_HEADER_FOR_LENGTH) < _HEADER_CACHE_LIMIT:
            _HEADER_FOR_LENGTH[length] = header
    return header


def _normalize_compression(compression, allow_detect):
    """NONE, GZIP or ZLIB from the ways people spell them; None stays None when detection is allowed."""
    if compression is None:
        return None if allow_detect else NONE
    if isinstance(compression, str):
        name = compression.strip().upper()
        if name in ("", NONE):
            return NONE
        if name in (GZIP, "GZ"):
            return GZIP
        if name == ZLIB:
            return ZLIB
        if name == "AUTO" and allow_detect:
            return None
    raise ValueError("unknown TFRecord compression %r: use None (%s), \"GZIP\" or \"ZLIB\""
                     % (compression, "detect it" if allow_detect else "none"))


def detect_compression(prefix):
    """Guesses the compression of a file from its first bytes (12 are enough): NONE, GZIP or ZLIB.

    An uncompressed file whose first length header carries a valid CRC wins first, since the
    first bytes of a plain file can look like a compression header (a first record of 376 bytes
    starts `78 01`, a valid zlib header). Otherwise `1f 8b` means GZIP and a valid zlib header
    (deflate method, window at most 32 KiB, header checksum a multiple of 31) means ZLIB.
    Anything else is read as uncompressed, so its damage is reported as framing errors.
    """
    prefix = bytes(prefix[:_HEADER_SIZE])
    if len(prefix) >= _HEADER_SIZE and masked_crc32c(prefix[:8]) == _unpack_u32_at(prefix, 8)[0]:
        return NONE
    if len(prefix) < 2:
        return NONE
    if prefix[0] == 0x1F and prefix[1] == 0x8B:
        return GZIP
    method, window_log = prefix[0] & 0x0F, prefix[0] >> 4
    if method == 8 and window_log <= 7 and ((prefix[0] << 8) | prefix[1]) % 31 == 0:
        return ZLIB
    return NONE


def _read_fully(file, count):
    parts, total = [], 0
    while total < count:
        chunk = file.read(count - total)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


_RUN_STRUCTS = {}
_RUN_PROBE_LIMIT = 4096
_LANE_MASKS = {}


def _lane_masks(count):
    """Big-int masks over at least `count` 64-bit little-endian lanes for `_masked_crc_lanes`
    (cached per power of two; longer masks are cut to size by the last `&`)."""
    capacity = 1 << (count - 1).bit_length()
    masks = _LANE_MASKS.get(capacity)
    if masks is None:
        masks = tuple(int.from_bytes(pattern * capacity, "little") for pattern in (
            b"\xff\xff\x01\x00\x00\x00\x00\x00",   # bits 0..16
            b"\x00\x00\xfe\xff\x00\x00\x00\x00",   # bits 17..31
            _pack_u32(_MASK_DELTA) + b"\x00\x00\x00\x00",
            b"\xff\xff\xff\xff\x00\x00\x00\x00"))
        _LANE_MASKS[capacity] = masks
    return masks


def _scan_records(buffer, position, limit):
    """(records, position after them): the whole records in `buffer` from `position` on whose
    length header was already found valid (`_LENGTH_FOR_VALID_HEADER`), of at most `limit`
    bytes, with a data CRC that matches. Stops before the first record that is not so (cut by
    the buffer's end, new header, damage) for read_record() to handle and report.

    Records of one length usually follow each other (fixed-schema examples), so a run of records
    of one length is a repeated fixed-size struct: each byte of the headers is checked for the
    whole run with one strided slice, the data split out by one `struct.iter_unpack`, the footers
    gathered by four strided slices, and all data CRCs checked at once (`_masked_crc_lanes`).
    The per-record work is then the crc32c call and a bytes object, both made in C. The run
    length is probed adaptively, so records of varying lengths cost little extra."""
    records = []
    if not _LITTLE_ENDIAN:
        return records, position
    lengths = _LENGTH_FOR_VALID_HEADER
    size = len(buffer)
    view = None
    probe = _RUN_PROBE_START
    while position + _HEADER_SIZE <= size:
        header = buffer[position:position + _HEADER_SIZE]
        length = lengths.get(header)
        if length is None or length > limit:
            break
        stride = length + _HEADER_SIZE + _FOOTER_SIZE
        count = min((size - position) // stride, probe)
        if count > 1:
            stop = position + count * stride
            for byte in range(_HEADER_SIZE):
                column = buffer[position + byte:stop:stride]
                if column.count(header[byte]) != count:
                    count -= len(column.lstrip(header[byte:byte + 1]))  # the records before the first other byte
                    stop = position + count * stride
            probe = min(probe * 2, _RUN_PROBE_LIMIT) if count == probe else max(2 * count, 2)
        if count == 0:
            break
        if count == 1:
            end = position + _HEADER_SIZE + length
            data = buffer[position + _HEADER_SIZE:end]
            crc = _crc32c_function(data)
            if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32 != _unpack_u32_at(buffer, end)[0]:
                break
            records.append(data)
            position = end + _FOOTER_SIZE
            probe = 2
            continue
        run = _RUN_STRUCTS.get(length)
        if run is None:
            run = struct.Struct("%dx%ds%dx" % (_HEADER_SIZE, length, _FOOTER_SIZE)).iter_unpack
            if len(_RUN_STRUCTS) < _HEADER_CACHE_LIMIT:
                _RUN_STRUCTS[length] = run
        if view is None:
            view = memoryview(buffer)
        datas = [data for (data,) in run(view[position:stop])]
        footers = bytearray(count << 3)
        at = position + _HEADER_SIZE + length
        for byte in range(_FOOTER_SIZE):
            footers[byte::8] = buffer[at + byte:stop:stride]
        if _masked_crc_lanes(datas) != footers:
            for data in datas:  # find the damaged one: read_record() reports it
                crc = _crc32c_function(data)
                if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32 != _unpack_u32_at(buffer, at)[0]:
                    break
                records.append(data)
                position += stride
                at += stride
            break
        records += datas
        position = stop
    return records, position


_RUN_PROBE_START = 256  # records; runs end at a buffer's end anyway, and a shorter run costs little


class TFRecordReader:
    """Reads the records of one TFRecord file, checking both CRCs of every record.

        with TFRecordReader("data-00000-of-00001.tfrecord.gz") as reader:
            for record in reader:               # bytes
                example = Example.parse(record)

    The file is streamed through a fixed-size buffer (GZIP and ZLIB are decompressed on the fly),
    so files far larger than memory read in constant memory. `compression` is None (detect it
    from the first bytes, the default), "NONE", "GZIP" or "ZLIB".

    A reader never hands out bytes that failed a check: a corrupt length or data CRC, a
    truncated record, an over-long length or a damaged compressed stream raises a
    `TFRecordError` naming the file and the record index, and every later read raises it again.
    `record_index` is the index the next record will have (the number read so far).
    """

    def __init__(self, path, compression=None, max_record_length=DEFAULT_MAX_RECORD_LENGTH,
                 buffer_size=DEFAULT_BUFFER_SIZE):
        self.path = os.fspath(path)
        # Records are checked a buffer at a time: `_scanned` counts the records checked so far,
        # `_pending` iterates over those of them not handed out yet.
        self._scanned = 0
        self._pending = None
        self.max_record_length = max(0, int(max_record_length))
        self._buffer_size = max(int(buffer_size), 64)
        self._failure = None
        self._finished = False
        requested = _normalize_compression(compression, allow_detect=True)
        self._file = open(self.path, "rb", buffering=0)
        try:
            prefix = _read_fully(self._file, _HEADER_SIZE)
            #: The file's compression, as given or detected: NONE, GZIP or ZLIB.
            self.compression = requested or detect_compression(prefix)
        except BaseException:
            self._file.close()
            raise
        # The uncompressed stream is held in `_buffer` from `_position` on; `_base` is the stream
        # offset of `_buffer[0]`.
        self._base = 0
        self._position = 0
        if self.compression == NONE:
            self._buffer = prefix
            self._pending_input = b""
            self._inflater = None
        else:
            self._buffer = b""
            self._pending_input = prefix
            self._window_bits = _WINDOW_BITS[self.compression]
            self._inflater = zlib.decompressobj(self._window_bits)
        self._source_ended = False

    # -- Iteration ------------------------------------------------------------------------------

    def __iter__(self):
        return self._records()

    def __next__(self):
        record = self.read_record()
        if record is None:
            raise StopIteration
        return record

    @property
    def record_index(self):
        """The index the next record will have (the number of records handed out so far)."""
        pending = self._pending
        return self._scanned - (pending.__length_hint__() if pending is not None else 0)

    def _records(self):
        """The remaining records: the same checks as read_record(), done a buffer at a time for
        the common case (whole records in the buffer, headers seen before) by `_scan`."""
        while True:
            pending = self._pending
            if pending is not None:
                yield from pending
                self._pending = None
            batch, position = _scan_records(self._buffer, self._position, self.max_record_length)
            if batch:
                self._position = position
                self._scanned += len(batch)
                self._pending = iter(batch)
                continue
            record = self.read_record()
            if record is None:
                return
            yield record

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Closes the file. Reading after it raises ValueError."""
        self._file.close()

    def examples(self):
        """The remaining records, each decoded as an `Example` (a `MalformedExampleError` names
        the record that is not one)."""
        for record in self:
            yield _parse_record(record, self.path, self.record_index - 1)

    def read_batch(self):
        """The next records (a list of bytes, at least one), as many as the buffer holds whole
        (about 256 KiB of them); an empty list after the last record. The same checks as
        `read_record()`, with less work per record: the call for many small records. After a
        batch that ends before a damaged record, the next call raises its error."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            batch = list(pending)
            if batch:
                return batch
        if self._failure is not None:
            raise self._failure
        batch = self._scan()
        if not batch:
            record = self.read_record()
            if record is None:
                return []
            # read_record() refilled the buffer: take what followed the record in it as well.
            batch = [record]
            batch += self._scan()
        return batch

    def batches(self):
        """The remaining records as lists (see `read_batch`)."""
        while True:
            batch = self.read_batch()
            if not batch:
                return
            yield batch

    def example_batches(self):
        """The remaining records decoded a batch at a time into `ExampleBatch`es (columns per
        feature; see `read_batch` for the batch sizes). A record that is not an Example raises
        `MalformedExampleError` naming its index."""
        while True:
            first_index = self.record_index
            batch = self.read_batch()
            if not batch:
                return
            yield _decode_batch(batch, self.path, first_index)

    def _scan(self):
        batch, position = _scan_records(self._buffer, self._position, self.max_record_length)
        if batch:
            self._position = position
            self._scanned += len(batch)
        return batch

    def read_record(self):
        """The next record's bytes, or None after the last one."""
        pending = self._pending
        if pending is not None:
            for record in pending:
                return record
            self._pending = None
        if self._failure is not None:
            raise self._failure
        buffer = self._buffer
        position = self._position
        if len(buffer) - position < _HEADER_SIZE:
            if self._finished:
                return None
            buffer, position = self._fill(_HEADER_SIZE)
            available = len(buffer) - position
            if available < _HEADER_SIZE:
                if available == 0:
                    self._finished = True
                    return None
                self._fail(TruncatedRecordError(self.path, self.record_index, self._base + position,
                                                _HEADER_SIZE, available))
        header = buffer[position:position + _HEADER_SIZE]
        length = _LENGTH_FOR_VALID_HEADER.get(header)
        if length is None:
            length, length_crc = _unpack_length_and_crc(header)
            if masked_crc32c(header[:8]) != length_crc:
                self._fail(CorruptLengthError(self.path, self.record_index, self._base + position))
            if len(_LENGTH_FOR_VALID_HEADER) < _HEADER_CACHE_LIMIT:
                _LENGTH_FOR_VALID_HEADER[header] = length
        if length > self.max_record_length:
            self._fail(RecordTooLargeError(self.path, self.record_index, self._base + position, length,
                                           self.max_record_length))
        start = position + _HEADER_SIZE
        end = start + length
        if end + _FOOTER_SIZE > len(buffer):
            buffer, position = self._fill(_HEADER_SIZE + length + _FOOTER_SIZE)
            start = position + _HEADER_SIZE
            end = start + length
            if end + _FOOTER_SIZE > len(buffer):
                self._fail(TruncatedRecordError(self.path, self.record_index, self._base + position,
                                                _HEADER_SIZE + length + _FOOTER_SIZE, len(buffer) - position))
        data = buffer[start:end]
        crc = _crc32c_function(data)
        if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32 != _unpack_u32_at(buffer, end)[0]:
            self._fail(CorruptDataError(self.path, self.record_index, self._base + start, length))
        self._position = end + _FOOTER_SIZE
        self._scanned += 1
        return data

    # -- The byte stream ------------------------------------------------------------------------

    def _fail(self, error):
        self._failure = error
        raise error

    def _fill(self, needed):
        """Makes `needed` bytes available from `_position` on, unless the stream ends first."""
        rest = self._buffer[self._position:]
        self._base += self._position
        parts, available = [rest], len(rest)
        while available < needed and not self._source_ended:
            chunk = self._produce(max(self._buffer_size, needed - available))
            if not chunk:
                self._source_ended = True
                break
            parts.append(chunk)
            available += len(chunk)
        self._buffer = parts[0] if len(parts) == 1 else b"".join(parts)
        self._position = 0
        return self._buffer, 0

    def _produce(self, size):
        """Up to about `size` more bytes of the uncompressed stream; b"" at its end."""
        if self._inflater is None:
            return self._file.read(size)
        try:
            while True:
                inflater = self._inflater
                if inflater.eof:
                    # The end of a gzip member (or zlib stream): more bytes are another member,
                    # or garbage that the next decompressor rejects.
                    data = inflater.unused_data or self._pending_input or self._file.read(self._buffer_size)
                    self._pending_input = b""
                    if not data:
                        return b""
                    inflater = self._inflater = zlib.decompressobj(self._window_bits)
                elif inflater.unconsumed_tail:
                    data = inflater.unconsumed_tail
                else:
                    data = self._pending_input or self._file.read(self._buffer_size)
                    self._pending_input = b""
                    if not data:
                        raise zlib.error("the compressed stream ends before its end marker: the file is truncated")
                output = inflater.decompress(data, size)
                if output:
                    return output
        except zlib.error as error:
            reason = str(error)
        self._fail(CorruptCompressedStreamError(self.path, self.compression, self.record_index, reason))


class _HeaderCache(dict):
    """Length -> framing header, computing (and, up to a bound, keeping) missing ones, so that
    `map(cache.__getitem__, lengths)` runs in C for lengths seen before."""

    def __missing__(self, length):
        header = _framing_header(length)
        if len(self) < _HEADER_CACHE_LIMIT:
            self[length] = header
        return header


_HEADERS = _HeaderCache()
_FOOTER_OF_LANE = struct.Struct("4s4x").iter_unpack


def _masked_crc_lanes(records):
    """The masked CRC32C of each record, as 8-byte little-endian lanes (the CRC then 4 zero
    bytes) of one bytes object, computed with one crc32c call per record (by map(), in C) and a
    few whole-integer operations for all the masking (rotate, add the delta) at once."""
    count = len(records)
    lanes = int.from_bytes(_array("Q", map(_crc32c_function, records)), "little")
    low17, high15, delta, low32 = _lane_masks(count)
    # The masks may have more lanes than there are records: the extra lanes hold only the delta.
    masked = ((((lanes >> 15) & low17) | ((lanes << 17) & high15)) + delta) & low32
    if count & (count - 1):
        masked &= (1 << (count << 6)) - 1
    return masked.to_bytes(count << 3, "little")


def _frame(records):
    """The TFRecord framing of a list of bytes records, as one bytes object."""
    if not _LITTLE_ENDIAN:
        parts = []
        for record in records:
            parts += (_framing_header(len(record)), record, _pack_u32(masked_crc32c(record)))
        return b"".join(parts)
    lanes = _masked_crc_lanes(records)
    lengths = list(map(len, records))
    length = lengths[0]
    if lengths.count(length) == len(lengths):
        # One length (fixed-schema examples): every header is the same, so the records joined
        # with "footer placeholder + header" between them are the framing but for the footers,
        # which four strided copies then fill in from the CRC lanes for all records at once.
        header = _HEADERS[length]
        framed = bytearray(header + (b"\x00\x00\x00\x00" + header).join(records) + b"\x00\x00\x00\x00")
        stride = length + _HEADER_SIZE + _FOOTER_SIZE
        for byte in range(_FOOTER_SIZE):
            framed[_HEADER_SIZE + length + byte::stride] = lanes[byte::8]
        return framed
    headers = map(_HEADERS.__getitem__, lengths)
    footers = map(_first, _FOOTER_OF_LANE(lanes))
    return b"".join(_chain_from_iterable(zip(headers, records, footers)))


class TFRecordWriter:
    """Writes records to one TFRecord file, as `tf.io.TFRecordWriter` does.

        with TFRecordWriter("data-00000-of-00001.tfrecord.gz", compression="GZIP") as writer:
            writer.write(example)               # an Example, or bytes

    Uncompressed output is byte-for-byte TensorFlow's. GZIP and ZLIB output is one stream over
    the whole file with TensorFlow's zlib settings (default level 6, memLevel 9), so with the same
    zlib it is TensorFlow's bytes too; it is deterministic either way (no timestamp in the gzip
    header). `compression` is None or "NONE", "GZIP" or "ZLIB"; `compression_level` is zlib's 0-9.
    Compression runs on a helper thread (zlib releases the GIL), overlapping the framing of the
    next records; at most two buffers are in flight, so memory stays flat.

    Output is buffered: records are framed a buffer (256 KiB) at a time, so `write()` only
    queues the record; `close()` (or leaving the `with` block) writes the rest and ends the
    compressed stream. After a failed write or `close()`, writes raise `WriterClosedError`.
    """

    def __init__(self, path, compression=None, compression_level=None, buffer_size=DEFAULT_BUFFER_SIZE):
        self.path = os.fspath(path)
        #: The file's compression: NONE, GZIP or ZLIB.
        self.compression = _normalize_compression(compression, allow_detect=False)
        #: The number of records written so far.
        self.record_count = 0
        level = -1 if compression_level is None else min(max(int(compression_level), 0), 9)
        self._buffer_size = max(int(buffer_size), 64)
        # Records wait in `_pending` (with `_pending_size` bytes) and are framed a buffer at a
        # time by `_frame`, whose per-record work runs in C.
        self._pending = []
        self._pending_size = 0
        self._deflater = None
        self._pool = None
        self._in_flight = []
        if self.compression != NONE:
            self._deflater = zlib.compressobj(level, zlib.DEFLATED, _WINDOW_BITS[self.compression], 9)
        self._file = open(self.path, "wb")
        self._open = True  # accepting records
        self._released = False  # file closed
        if self._deflater is not None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zenml-step-deflate")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        # A writer dropped without close() still finishes its file, as far as it can.
        if not getattr(self, "_released", True):
            try:
                self.close()
            except Exception:
                pass

    def write(self, record):
        """Appends one record: bytes (or any bytes-like object), or an `Example`."""
        if not self._open:
            raise WriterClosedError(self.path)
        if not isinstance(record, bytes):
            if isinstance(record, Example):
                record = record.serialize()
            elif isinstance(record, str):
                raise TypeError("a TFRecord record is bytes, not str: encode the text (text.encode()) "
                                "or write an Example")
            else:
                record = bytes(memoryview(record).cast("B"))
        self._pending.append(record)
        self._pending_size += len(record) + 16
        self.record_count += 1
        if self._pending_size >= self._buffer_size:
            self._drain(None)

    def write_records(self, records):
        """Appends every record of an iterable of bytes (or `Example`s): the same as calling
        `write()` for each, faster for many small pre-serialized records."""
        if not self._open:
            raise WriterClosedError(self.path)
        records = records if type(records) is list else list(records)
        if not set(map(type, records)) <= {bytes}:
            for record in records:
                self.write(record)
            return
        limit = self._buffer_size
        start = 0
        total = len(records)
        while start < total:
            # About one buffer's worth at a time, so the framed bytes stay bounded.
            room = max(1, (limit - self._pending_size) // (len(records[start]) + 16))
            chunk = records[start:start + room]
            self.record_count += len(chunk)
            start += len(chunk)
            if not self._pending and start < total:
                # A whole buffer's worth: framed and written at once, not queued.
                self._emit(_frame(chunk), None)
                continue
            self._pending += chunk
            self._pending_size += sum(map(len, chunk)) + 16 * len(chunk)
            if self._pending_size >= limit:
                self._drain(None)

    def flush(self):
        """Hands every record written so far to the operating system. A compressed stream is
        sync-flushed, which costs a few bytes each time, so flush rarely."""
        if not self._open:
            raise WriterClosedError(self.path)
        self._drain(zlib.Z_SYNC_FLUSH)
        self._guard(self._file.flush)

    def close(self):
        """Writes what is buffered, ends the compressed stream and closes the file. Calling it
        again does nothing."""
        if self._released:
            return
        try:
            if self._open:
                self._drain(zlib.Z_FINISH)
        finally:
            self._open = False
            self._released = True
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._file.close()

    def _drain(self, flush_mode):
        """Writes the buffer out (compressing it); with a flush mode, waits until all is written."""
        data = _frame(self._pending) if self._pending else b""
        self._pending = []
        self._pending_size = 0
        self._emit(data, flush_mode)

    def _emit(self, data, flush_mode):
        """Writes framed bytes out (compressing them); with a flush mode, waits until all is written."""
        if self._deflater is None:
            if data:
                self._guard(self._file.write, data)
            return
        if self._pool is not None:
            try:
                self._in_flight.append(self._pool.submit(self._compress_and_write, data, flush_mode))
            except RuntimeError:  # the interpreter is shutting down: no more threads
                self._wait(0)
                self._pool = None
            else:
                self._wait(0 if flush_mode is not None else 1)
                return
        self._guard(self._compress_and_write, data, flush_mode)

    def _wait(self, keep):
        """Waits until at most `keep` buffers are being compressed, raising the first failure."""
        while len(self._in_flight) > keep:
            self._guard(self._in_flight.pop(0).result)

    def _compress_and_write(self, data, flush_mode):
        output = self._deflater.compress(data)
        if flush_mode is not None:
            output += self._deflater.flush(flush_mode)
        if output:
            self._file.write(output)

    def _guard(self, operation, *arguments):
        try:
            operation(*arguments)
        except BaseException:
            self._open = False
            raise


# ==============================================================================================
# tf.train.Example
# ==============================================================================================
#
# Field numbers from tensorflow/core/example/{example,feature}.proto:
#   Example { Features features = 1; }
#   Features { map<string, Feature> feature = 1; }      (entry: string key = 1; Feature value = 2;)
#   Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
#   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed = true]; }
#   Int64List { repeated int64 value = 1 [packed = true]; }
#
# These messages have been frozen for years and use six rules of the protobuf wire format, so a
# small codec here replaces the protobuf package and writes exactly TensorFlow's bytes.

_MASK64 = (1 << 64) - 1
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_TWO_TO_64 = 1 << 64
_SINGLE_BYTE = [bytes((value,)) for value in range(128)]
_unpack_float_at = struct.Struct("<f").unpack_from
_FLOAT_STRUCTS = {}
_LITTLE_ENDIAN = sys.byteorder == "little"

_BYTES_LIST = "bytes_list"
_FLOAT_LIST = "float_list"
_INT64_LIST = "int64_list"
_KINDS = (_BYTES_LIST, _FLOAT_LIST, _INT64_LIST)


def _float_struct(count):
    packer = _FLOAT_STRUCTS.get(count)
    if packer is None:
        packer = struct.Struct("<%df" % count)
        if count <= 64:
            _FLOAT_STRUCTS[count] = packer
    return packer


def _varint(value):
    """The varint encoding of 0 <= value < 2**64."""
    if value < 0x80:
        return _SINGLE_BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _int64_varint(value):
    if value < 0:
        if value < _INT64_MIN:
            raise OverflowError("%d is below the int64 minimum %d" % (value, _INT64_MIN))
        value += _TWO_TO_64
    elif value > _INT64_MAX:
        raise OverflowError("%d is above the int64 maximum %d" % (value, _INT64_MAX))
    return _varint(value)


class Feature:
    """One feature of an `Example`: TensorFlow's `tf.train.Feature`.

    `kind` is "bytes_list", "float_list", "int64_list", or None for a Feature message with no kind
    set (Python's `tf.train.Feature()`: present, but holding no list, which is not the same as an
    empty list). `values` is a list of bytes, floats or ints.

        Feature.bytes_list([b"cat", "dog"])     # str is stored as its UTF-8 bytes
        Feature.float_list([0.5, 1.5])          # float32 on the wire: 0.1 reads back as 0.10000000149...
        Feature.int64_list([7, -1])

    Two features are equal when they hold the same kind and the same values, floats compared as
    float32 bit patterns (so -0.0 != 0.0), as befits serialized data. (Python turns a float32
    signaling NaN into a quiet one when reading it; every other bit pattern survives exactly.)
    """

    __slots__ = ("kind", "values")

    BYTES_LIST = _BYTES_LIST
    FLOAT_LIST = _FLOAT_LIST
    INT64_LIST = _INT64_LIST

    def __init__(self, kind=None, values=None):
        if kind is not None and kind not in _KINDS:
            raise ValueError("a feature's kind is 'bytes_list', 'float_list', 'int64_list' or None, not %r" % (kind,))
        if kind is None and values:
            raise ValueError("a feature with no kind holds no values; give its kind")
        self.kind = kind
        self.values = [] if values is None else values if type(values) is list else list(values)

    @classmethod
    def bytes_list(cls, values=()):
        """A bytes list; str values are stored as their UTF-8 bytes."""
        converted = []
        for value in values:
            if isinstance(value, str):
                value = value.encode("utf-8")
            elif not isinstance(value, bytes):
                if not isinstance(value, (bytearray, memoryview)):
                    raise TypeError("a bytes_list holds bytes or str, not %s (%r)" % (type(value).__name__, value))
                value = bytes(value)
            converted.append(value)
        return cls(_BYTES_LIST, converted)

    @classmethod
    def float_list(cls, values=()):
        """A float list (anything `float()` accepts); values are float32 on the wire."""
        return cls(_FLOAT_LIST, [float(value) for value in values])

    @classmethod
    def int64_list(cls, values=()):
        """An int64 list (ints, or anything with `__index__`, such as numpy integers)."""
        converted = []
        for value in values:
            if isinstance(value, float):
                raise TypeError("an int64_list holds integers, not the float %r" % (value,))
            value = operator.index(value)
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ValueError("%d does not fit in an int64" % value)
            converted.append(value)
        return cls(_INT64_LIST, converted)

    @classmethod
    def unset(cls):
        """A Feature with no kind set."""
        return cls()

    def __eq__(self, other):
        if not isinstance(other, Feature):
            return NotImplemented
        if self.kind != other.kind or len(self.values) != len(other.values):
            return False
        if self.kind == _FLOAT_LIST:
            try:
                packer = _float_struct(len(self.values))
                return packer.pack(*self.values) == packer.pack(*other.values)
            except (OverflowError, struct.error, TypeError):
                return self.values == other.values
        return self.values == other.values

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None

    def __repr__(self):
        if self.kind is None:
            return "Feature.unset()"
        return "Feature.%s(%r)" % (self.kind, self.values)

    def _encode(self):
        """The serialized Feature message."""
        kind, values = self.kind, self.values
        if kind == _FLOAT_LIST:
            if not values:
                return b"\x12\x00"
            packed = _float_struct(len(values)).pack(*values)
            inner = b"\n" + _varint(len(packed)) + packed
            return b"\x12" + _varint(len(inner)) + inner
        if kind == _INT64_LIST:
            if not values:
                return b"\x1a\x00"
            single = _SINGLE_BYTE
            packed = b"".join([single[value] if 0 <= value < 0x80 else _int64_varint(value) for value in values])
            inner = b"\n" + _varint(len(packed)) + packed
            return b"\x1a" + _varint(len(inner)) + inner
        if kind == _BYTES_LIST:
            inner = b"".join([b"\n" + _varint(len(value)) + value for value in values])
            return b"\n" + _varint(len(inner)) + inner
        return b""


class Example:
    """A `tf.train.Example`: named features, each a list of bytes, floats or int64s.

        example = Example({"label": Feature.bytes_list([b"cat"]), "x": Feature.float_list([0.5])})
        example = Example.from_dict({"label": [b"cat"], "x": [0.5], "id": 7})   # kinds inferred
        data = example.serialize()               # TensorFlow's bytes
        Example.parse(data) == example           # True
        example["x"].values                      # [0.5]
        example.to_dict()                        # {"label": [b"cat"], "x": [0.5]}

    `features` is a dict from name (str) to `Feature` (values that are not Features are converted
    as `from_dict` converts them); the Example also behaves like that dict
    (`example[name]`, `name in example`, `len`, iteration over names). A feature with an empty
    list is present; a missing name is absent.
    """

    __slots__ = ("features",)

    def __init__(self, features=None):
        self.features = {}
        if features is not None:
            for key, value in dict(features).items():
                self.features[key] = value if isinstance(value, Feature) else _infer_feature(key, value)

    # -- Building and reading -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, mapping):
        """An Example from a dict of feature name to values, inferring each feature's kind:

        * bytes or str values: a bytes_list (str as UTF-8);
        * ints (and bools): an int64_list;
        * floats, or floats mixed with ints: a float_list;
        * a `Feature`: itself.

        A single value stands for a list of one; numpy arrays and scalars work through their
        `tolist()`. An empty list has no kind to infer: pass `Feature.float_list([])` (or
        another kind) for it.
        """
        features = {}
        for key, value in mapping.items():
            features[key] = value if isinstance(value, Feature) else _infer_feature(key, value)
        return cls(features)

    def to_dict(self):
        """The features as a dict of name to list of values (bytes, float or int). A feature
        with no kind set becomes an empty list."""
        return {key: list(feature.values) for key, feature in self.features.items()}

    def __getitem__(self, key):
        return self.features[key]

    def __setitem__(self, key, value):
        self.features[key] = value if isinstance(value, Feature) else _infer_feature(key, value)

    def __delitem__(self, key):
        del self.features[key]

    def __contains__(self, key):
        return key in self.features

    def __iter__(self):
        return iter(self.features)

    def __len__(self):
        return len(self.features)

    def get(self, key, default=None):
        return self.features.get(key, default)

    def keys(self):
        return self.features.keys()

    def items(self):
        return self.features.items()

    def __eq__(self, other):
        if not isinstance(other, Example):
            return NotImplemented
        return self.features == other.features

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None

    def __repr__(self):
        return "Example(%r)" % (self.features,)

    # -- Wire format ----------------------------------------------------------------------------

    def serialize(self):
        """The example as TensorFlow serializes it (`SerializeToString(deterministic=True)`):
        features sorted by name (UTF-8 byte order), float and int64 lists packed. The features
        field is always written, so an example without features is `0a 00`."""
        features = self.features
        parts = []
        for key in sorted(features):
            feature = features[key]
            try:
                key_bytes = key.encode("utf-8")
                body = feature._encode()
            except (AttributeError, TypeError, ValueError, OverflowError, struct.error) as error:
                raise ValueError("feature %r cannot be serialized: %s; features are Feature objects with "
                                 "str names and values of their kind" % (key, error)) from None
            entry = b"\n" + _varint(len(key_bytes)) + key_bytes + b"\x12" + _varint(len(body)) + body
            parts.append(b"\n" + _varint(len(entry)) + entry)
        content = b"".join(parts)
        return b"\n" + _varint(len(content)) + content

    #: TensorFlow's name for `serialize`.
    SerializeToString = serialize

    @classmethod
    def parse(cls, data):
        """Decodes a serialized `tf.train.Example` (bytes-like). Any valid encoding is accepted:
        names in any order, packed or unpacked lists, unknown fields (skipped), repeated fields
        (merged as protobuf merges them). Raises `ExampleDecodeError` for anything else."""
        if type(data) is not bytes:
            data = bytes(memoryview(data).cast("B"))
        example = cls.__new__(cls)
        example.features = _parse_example(data)
        return example

    #: TensorFlow's name for `parse`.
    FromString = parse


def _infer_feature(key, value):
    if hasattr(value, "tolist") and not isinstance(value, (bytes, bytearray, str)):
        value = value.tolist()  # numpy arrays and scalars
    if isinstance(value, (bytes, bytearray, memoryview, str, int, float)):
        value = [value]
    elif not isinstance(value, list):
        try:
            value = list(value)
        except TypeError:
            raise TypeError("feature %r: %r is not a list of bytes, str, int or float values"
                            % (key, value)) from None
    if not value:
        raise ValueError("feature %r is an empty list, whose kind cannot be inferred: use "
                         "Feature.bytes_list([]), Feature.float_list([]) or Feature.int64_list([])" % (key,))
    kinds = set(map(type, value))
    if kinds <= {int, bool}:
        return Feature.int64_list(value)
    if kinds <= {float, int, bool}:
        return Feature.float_list(value)
    if kinds <= {bytes, str, bytearray, memoryview}:
        return Feature.bytes_list(value)
    raise TypeError("feature %r mixes or holds unsupported types (%s): a feature holds bytes/str, "
                    "int or float values only" % (key, ", ".join(sorted(kind.__name__ for kind in kinds))))


# -- Decoding ------------------------------------------------------------------------------------


def _read_varint(data, pos, end):
    """(value, position after it) of the varint at `pos`."""
    start = pos
    result = 0
    shift = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        # A tenth byte contributes its lowest bit only; protobuf parsers drop the rest.
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise ExampleDecodeError(start, "a varint runs longer than 10 bytes")
    raise ExampleDecodeError(start, "the message ends inside a varint")


def _read_length_delimited(data, pos, end):
    """(start, stop) of the contents of the length-delimited field whose length is at `pos`."""
    if pos < end and data[pos] < 0x80:
        length = data[pos]
        stop = pos + 1 + length
        if stop <= end:
            return pos + 1, stop
        start = pos
    else:
        start = pos
        length, pos = _read_varint(data, pos, end)
        stop = pos + length
        if stop <= end:
            return pos, stop
    raise ExampleDecodeError(start, "a length-delimited field of %d bytes runs past the end of its message" % length)


def _skip_value(data, pos, end, tag, tag_start, depth=0):
    """Skips the value of a field this decoder does not use, as protobuf parsers do; `pos` is just
    after its tag. Returns the position after the value."""
    field, wire_type = tag >> 3, tag & 7
    if field == 0 or wire_type > 5:
        raise ExampleDecodeError(tag_start, "invalid field tag %d" % tag)
    if wire_type == 0:
        return _read_varint(data, pos, end)[1]
    if wire_type == 2:
        return _read_length_delimited(data, pos, end)[1]
    if wire_type == 5:
        if end - pos < 4:
            raise ExampleDecodeError(pos, "the message ends inside a 4-byte field")
        return pos + 4
    if wire_type == 1:
        if end - pos < 8:
            raise ExampleDecodeError(pos, "the message ends inside an 8-byte field")
        return pos + 8
    if wire_type == 4:
        raise ExampleDecodeError(pos, "end of group %d without its start" % field)
    # wire_type == 3: a group, skipped up to its end tag.
    if depth >= 64:
        raise ExampleDecodeError(pos, "groups nest more than 64 deep")
    while True:
        if pos >= end:
            raise ExampleDecodeError(pos, "the message ends inside group %d" % field)
        inner_start = pos
        inner, pos = _read_varint(data, pos, end)
        if inner & 7 == 4 and inner >> 3 != 0:
            if inner >> 3 != field:
                raise ExampleDecodeError(pos, "group %d is closed as group %d" % (field, inner >> 3))
            return pos
        pos = _skip_value(data, pos, end, inner, inner_start, depth + 1)


def _parse_example(data):
    """The features of a serialized Example: a template of a layout seen before, else the fast
    path for TensorFlow's own layout, else the general decoder."""
    try:
        features = _parse_with_template(data)
    except (IndexError, UnicodeDecodeError, struct.error, ExampleDecodeError):
        features = None
    return features if features is not None else _parse_example_general(data)


# Records of one dataset mostly share a layout: the same features in the same order, lists of the
# same sizes, so the same bytes everywhere but in the values. A template, made from one record
# decoded by `_parse_canonical`, is a struct over the whole record whose fields are alternately
# the structural bytes (tags, lengths, names: checked equal to the template's) and the values
# (floats unpacked by the struct itself, bytes values and packed int64 lists as bytes). A record
# of the same length whose structural bytes all match is parsed by `_parse_canonical` exactly as
# the template's record was, so one struct call replaces the walk. Keyed by record length
# (bounded): lengths differ with the layout; a mismatch rebuilds the template from the new record.
_TEMPLATES = {}
_TEMPLATE_LIMIT = 256


def _parse_with_template(data):
    template = _TEMPLATES.get(len(data))
    if template is not None:
        unpack, structure, expected, plan = template
        fields = unpack(data)
        if structure(fields) == expected:
            features = {}
            new_feature = Feature.__new__
            for key, kind, index, getter in plan:
                feature = new_feature(Feature)
                feature.kind = kind
                if getter is not None:
                    feature.values = list(getter(fields))
                elif index is None:
                    feature.values = []
                elif kind is _INT64_LIST:
                    packed = fields[index]
                    feature.values = list(packed) if packed.isascii() else _packed_int64s(packed)
                else:
                    feature.values = [fields[index]]
                features[key] = feature
            return features
    features = _parse_canonical(data)
    if features is not None and _LITTLE_ENDIAN:
        template = _make_template(data)
        if template is not None and (len(_TEMPLATES) < _TEMPLATE_LIMIT or len(data) in _TEMPLATES):
            _TEMPLATES[len(data)] = template
    return features


def _packed_int64s(packed):
    values = []
    at, stop = 0, len(packed)
    while at < stop:
        byte = packed[at]
        if byte < 0x80:
            values.append(byte)
            at += 1
        else:
            value, at = _read_varint(packed, at, stop)
            values.append(value - _TWO_TO_64 if value > _INT64_MAX else value)
    return values


def _make_template(data):
    """The template of a record that `_parse_canonical` decoded, or None (see _parse_with_template)."""
    formats = []
    structure_indexes = []
    plan = []
    segment_start = 0  # where the structural bytes not yet in a field start

    def value_field(start, fmt):
        nonlocal segment_start
        if start > segment_start:
            structure_indexes.append(len(formats))
            formats.append("%ds" % (start - segment_start))
        formats.append(fmt)
        return len(formats) - 1

    end = len(data)
    length, pos = _read_varint(data, 1, end)
    while pos < end:
        length, pos = _read_varint(data, pos + 1, end)
        stop = pos + length
        length, pos = _read_varint(data, pos + 1, stop)
        key = data[pos:pos + length].decode("utf-8")
        length, at = _read_varint(data, pos + length + 1, stop)
        if at == stop:
            plan.append((key, None, None, None))
            pos = stop
            continue
        tag = data[at]
        kind = _KIND_FOR_TAG[tag]
        length, at = _read_varint(data, at + 1, stop)
        if at == stop:
            plan.append((key, kind, None, None))
            pos = stop
            continue
        size, at = _read_varint(data, at + 1, stop)
        if tag == 0x12:
            count = size >> 2
            if count == 0:
                plan.append((key, kind, None, None))
            else:
                first = value_field(at, "%df" % count)
                # struct gives "Nf" as N fields: keep len(formats) equal to the number of fields.
                formats.extend([None] * (count - 1))
                plan.append((key, kind, first, None) if count == 1
                            else (key, kind, None, _itemgetter(*range(first, first + count))))
            segment_start = stop
        elif tag == 0x1A:
            plan.append((key, kind, value_field(at, "%ds" % size), None))
            segment_start = stop
        else:
            indexes = []
            while True:
                indexes.append(value_field(at, "%ds" % size))
                segment_start = at = at + size
                if at == stop:
                    break
                size, at = _read_varint(data, at + 1, stop)
            plan.append((key, kind, indexes[0], None) if len(indexes) == 1
                        else (key, kind, None, _itemgetter(*indexes)))
        pos = stop
    if segment_start < end:
        structure_indexes.append(len(formats))
        formats.append("%ds" % (end - segment_start))
    if len(formats) > 512 or not structure_indexes:
        return None
    unpacker = struct.Struct("<" + "".join(fmt for fmt in formats if fmt is not None))
    if unpacker.size != end:
        return None
    structure = _itemgetter(*structure_indexes)
    fields = unpacker.unpack(data)
    if len(fields) != len(formats):
        return None
    return unpacker.unpack, structure, structure(fields), plan


# Feature names repeat in every record: decoding each once keeps one str per name (less memory,
# and a dict lookup is cheaper than a UTF-8 decode). Bounded, so memory stays flat.
_KEY_NAMES = {}
_KEY_CACHE_LIMIT = 4096
_KIND_FOR_TAG = {0x0A: _BYTES_LIST, 0x12: _FLOAT_LIST, 0x1A: _INT64_LIST}


def _parse_canonical(data):
    """Decodes the layout TensorFlow writes (one Features field, entries of key then value, one
    list per feature, float and int64 lists packed; lengths of any size), or returns None for
    anything else, which the general decoder then handles (and reports, if it is malformed).
    Several times faster than the general decoder on such records; both give the same result.
    It may also raise IndexError, UnicodeDecodeError or ExampleDecodeError: treat those as None."""
    end = len(data)
    if end < 2 or data[0] != 0x0A:
        return None
    pos = data[1]
    if pos < 0x80:
        if pos + 2 != end:
            return None
        pos = 2
    else:
        length, pos = _read_varint(data, 1, end)
        if pos + length != end:
            return None
    features = {}
    names = _KEY_NAMES
    new_feature = Feature.__new__
    while pos < end:
        # Entry: 0A <entry length> 0A <key length> <key> 12 <feature length> <feature>.
        if data[pos] != 0x0A:
            return None
        stop = data[pos + 1]
        if stop < 0x80:
            pos += 2
        else:
            stop, pos = _read_varint(data, pos + 1, end)
        stop += pos
        if stop > end or data[pos] != 0x0A:
            return None
        key_stop = data[pos + 1]
        if key_stop < 0x80:
            pos += 2
        else:
            key_stop, pos = _read_varint(data, pos + 1, stop)
        key_stop += pos
        if key_stop >= stop or data[key_stop] != 0x12:
            return None
        key_bytes = data[pos:key_stop]
        key = names.get(key_bytes)
        if key is None:
            key = key_bytes.decode("utf-8")
            if len(names) < _KEY_CACHE_LIMIT:
                names[key_bytes] = key
        at = data[key_stop + 1]
        if at < 0x80:
            pos = key_stop + 2 + at
            at = key_stop + 2
        else:
            pos, at = _read_varint(data, key_stop + 1, stop)
            pos += at
        if pos != stop:
            return None
        feature = new_feature(Feature)
        if at == stop:
            feature.kind = None
            feature.values = []
            features[key] = feature
            continue
        tag = data[at]
        kind = _KIND_FOR_TAG.get(tag)
        if kind is None:
            return None
        size = data[at + 1]
        if size < 0x80:
            at += 2
        else:
            size, at = _read_varint(data, at + 1, stop)
        if at + size != stop:
            return None
        feature.kind = kind
        if at == stop:
            feature.values = []
            features[key] = feature
            continue
        # The list message: 0A <size> <value> ..., once (packed) or once per bytes value.
        if data[at] != 0x0A:
            return None
        size = data[at + 1]
        if size < 0x80:
            at += 2
        else:
            size, at = _read_varint(data, at + 1, stop)
        if tag == 0x0A:  # bytes: value fields one after another
            values = []
            while True:
                if at + size > stop:
                    return None
                values.append(data[at:at + size])
                at += size
                if at == stop:
                    break
                if data[at] != 0x0A:
                    return None
                size = data[at + 1]
                if size < 0x80:
                    at += 2
                else:
                    size, at = _read_varint(data, at + 1, stop)
        elif at + size != stop:
            return None
        elif tag == 0x12:
            if size & 3:
                return None
            if size <= 256 or not _LITTLE_ENDIAN:
                values = list(_float_struct(size >> 2).unpack_from(data, at))
            else:
                values = memoryview(data)[at:stop].cast("f").tolist()
        else:
            packed = data[at:stop]
            if packed.isascii():  # every value is one varint byte: 0..127
                values = list(packed)
            else:
                values = []
                while at < stop:
                    byte = data[at]
                    if byte < 0x80:
                        values.append(byte)
                        at += 1
                    else:
                        value, at = _read_varint(data, at, stop)
                        values.append(value - _TWO_TO_64 if value > _INT64_MAX else value)
        feature.values = values
        features[key] = feature
    return features


def _parse_example_general(data):
    end = len(data)
    pos = 0
    features = {}
    while pos < end:
        tag_start = pos
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, tag_start, end)
        if tag == 0x0A:
            # A message field that occurs twice is merged: its map entries accumulate.
            pos, stop = _read_length_delimited(data, pos, end)
            _parse_features(data, pos, stop, features)
            pos = stop
        else:
            pos = _skip_value(data, pos, end, tag, tag_start)
    return features


def _parse_features(data, pos, end, features):
    while pos < end:
        tag_start = pos
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, tag_start, end)
        if tag == 0x0A:
            pos, stop = _read_length_delimited(data, pos, end)
            key, feature = _parse_entry(data, pos, stop)
            features[key] = feature  # A later entry for the same key replaces an earlier one.
            pos = stop
        else:
            pos = _skip_value(data, pos, end, tag, tag_start)


def _parse_entry(data, pos, end):
    key = ""
    kind = None
    values = []
    while pos < end:
        tag_start = pos
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, tag_start, end)
        if tag == 0x12:
            pos, stop = _read_length_delimited(data, pos, end)
            kind, values = _parse_feature(data, pos, stop, kind, values)
            pos = stop
        elif tag == 0x0A:
            pos, stop = _read_length_delimited(data, pos, end)
            try:
                key = data[pos:stop].decode("utf-8")
            except UnicodeDecodeError:
                raise ExampleDecodeError(pos, "a feature name is not valid UTF-8") from None
            pos = stop
        else:
            pos = _skip_value(data, pos, end, tag, tag_start)
    feature = Feature.__new__(Feature)
    feature.kind = kind
    feature.values = values
    return key, feature


def _parse_feature(data, pos, end, kind, values):
    """Decodes a Feature merged into (kind, values) as protobuf merges a repeated message field:
    the same kind again appends values; another kind replaces it."""
    while pos < end:
        tag_start = pos
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, tag_start, end)
        if tag == 0x12:
            new_kind = _FLOAT_LIST
        elif tag == 0x1A:
            new_kind = _INT64_LIST
        elif tag == 0x0A:
            new_kind = _BYTES_LIST
        else:
            pos = _skip_value(data, pos, end, tag, tag_start)
            continue
        pos, stop = _read_length_delimited(data, pos, end)
        if new_kind is not kind:
            kind = new_kind
            values = []
        if kind is _FLOAT_LIST:
            _parse_floats(data, pos, stop, values)
        elif kind is _INT64_LIST:
            _parse_int64s(data, pos, stop, values)
        else:
            _parse_bytes(data, pos, stop, values)
        pos = stop
    return kind, values


def _parse_bytes(data, pos, end, values):
    while pos < end:
        tag_start = pos
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, tag_start, end)
        if tag == 0x0A:
            pos, stop = _read_length_delimited(data, pos, end)
            values.append(data[pos:stop])
            pos = stop
        else:
            pos = _skip_value(data, pos, end, tag, tag_start)


def _parse_floats(data, pos, end, values):
    while pos < end:
        tag_start = pos
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, tag_start, end)
        if tag == 0x0A:  # packed
            pos, stop = _read_length_delimited(data, pos, end)
            size = stop - pos
            if size & 3:
                raise ExampleDecodeError(pos, "a packed float list of %d bytes is not a multiple of 4" % size)
            count = size >> 2
            if count <= 64 or not _LITTLE_ENDIAN:
                values.extend(_float_struct(count).unpack_from(data, pos))
            else:
                values.extend(memoryview(data)[pos:stop].cast("f").tolist())
            pos = stop
        elif tag == 0x0D:  # unpacked
            if end - pos < 4:
                raise ExampleDecodeError(pos, "the message ends inside a 4-byte field")
            values.append(_unpack_float_at(data, pos)[0])
            pos += 4
        else:
            pos = _skip_value(data, pos, end, tag, tag_start)


def _parse_int64s(data, pos, end, values):
    while pos < end:
        tag_start = pos
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_varint(data, tag_start, end)
        if tag == 0x0A:  # packed
            pos, stop = _read_length_delimited(data, pos, end)
            append = values.append
            while pos < stop:
                byte = data[pos]
                if byte < 0x80:
                    append(byte)
                    pos += 1
                else:
                    value, pos = _read_varint(data, pos, stop)
                    append(value - _TWO_TO_64 if value > _INT64_MAX else value)
        elif tag == 0x08:  # unpacked
            value, pos = _read_varint(data, pos, end)
            values.append(value - _TWO_TO_64 if value > _INT64_MAX else value)
        else:
            pos = _skip_value(data, pos, end, tag, tag_start)


def _parse_record(record, path, record_index):
    """Example.parse for a record read from a file, failing with a MalformedExampleError."""
    try:
        example = Example.__new__(Example)
        example.features = _parse_example(record)
        return example
    except ExampleDecodeError as error:
        raise MalformedExampleError(path, record_index, error) from None


# -- Decoding many records at once: columns -------------------------------------------------------
#
# ML code wants a batch of examples as one array per feature (what `tf.io.parse_example` returns),
# and building one `Example` with a dict and `Feature` objects per record costs far more than the
# values themselves. `ExampleBatch.decode` returns each feature as a `Column`: all its values in
# record order (array('f') for floats, array('q') for int64s, a list of bytes) and `row_splits`,
# as `tf.RaggedTensor` has them: record i holds values[row_splits[i]:row_splits[i + 1]].
#
# Records of a dataset usually share one layout, so consecutive records of one length are decoded
# together: the run is joined into one buffer, one struct (the run's *column template*, made from
# its first record) splits every record into its structural bytes (tags, lengths, names, checked
# equal to the template's with one tuple.count per segment) and its value bytes, and each value
# column is turned into an array with one call (floats: frombytes; packed int64s: all varints of
# the run at once, see `_varint_lanes`). When a structural byte or a varint's width differs, that
# run is decoded record by record instead, so the result is always the per-record decoder's.

_COLUMN_TEMPLATES = {}
_COLUMN_RUN_MIN = 4  # shorter runs are cheaper record by record than with a struct


class InconsistentFeatureError(ValueError):
    """A feature has one kind in one record of a batch and another kind in another, so it cannot
    be one column (`tf.io.parse_example` rejects such a batch too)."""

    def __init__(self, key, first_kind, first_index, kind, index):
        super().__init__("feature %r is a %s in record %d but a %s in record %d: a column holds one kind; "
                         "decode these records one by one (Example.parse) or fix the data"
                         % (key, first_kind, first_index, kind, index))
        self.key = key
        self.record_index = index


class Column:
    """One feature of an `ExampleBatch`: `kind` ("bytes_list", "float_list", "int64_list", or None
    when no record of the batch sets one), `values` (every record's values in record order:
    `array('f')` for floats, `array('q')` for int64s, a list of bytes, and an empty list for no
    kind), `row_lengths` (`array('q')`: how many values each record holds), `row_splits`
    (record i holds `values[row_splits[i]:row_splits[i + 1]]`) and `present` (a bytearray: 1
    where the record has the feature, 0 where it lacks it; either way a record without values
    has an empty row). A record whose feature has no kind set counts as present and empty.

    The arrays support the buffer protocol: `numpy.frombuffer(column.values, numpy.float32)` and
    `.reshape(len(column), -1)` for a fixed-size feature need no copy."""

    __slots__ = ("kind", "values", "row_lengths", "present", "_row_splits")

    def __init__(self, kind, values, row_lengths, present):
        self.kind = kind
        self.values = values
        #: array('q'): how many values each record holds.
        self.row_lengths = row_lengths
        #: bytearray: 1 where the record has the feature.
        self.present = present
        self._row_splits = None

    @property
    def row_splits(self):
        """array('q'), one more than the records: record i holds
        `values[row_splits[i]:row_splits[i + 1]]` (computed on first use)."""
        if self._row_splits is None:
            self._row_splits = _array("q", _accumulate(self.row_lengths, initial=0))
        return self._row_splits

    def __len__(self):
        return len(self.row_lengths)

    def row(self, index):
        """The values of record `index`, as a list."""
        splits = self.row_splits
        return list(self.values[splits[index]:splits[index + 1]])

    def rows(self):
        """Every record's values, as a list of lists."""
        values = self.values
        splits = self.row_splits
        return [list(values[start:stop]) for start, stop in zip(splits, splits[1:])]

    def __eq__(self, other):
        if not isinstance(other, Column):
            return NotImplemented
        return (self.kind == other.kind and list(self.row_lengths) == list(other.row_lengths)
                and self.present == other.present
                and (self.values.tobytes() == other.values.tobytes() if self.kind == _FLOAT_LIST
                     else list(self.values) == list(other.values)))

    __hash__ = None

    def __repr__(self):
        return "Column(%r, %r, row_lengths=%r)" % (self.kind, self.values, self.row_lengths)


class ExampleBatch:
    """Many `tf.train.Example` records decoded at once into one `Column` per feature name:

        batch = ExampleBatch.decode(records)        # a list of serialized Examples
        len(batch)                                  # the number of records
        batch["x"].values                           # array('f', [...]): every record's x, in order
        batch["x"].row_splits                       # where each record's values start and stop
        batch.examples()                            # the same records as Example objects

    The result is exactly what `Example.parse` gives record by record (tested against it),
    several times faster when records share a layout. `read_example_batches` reads files this
    way.
    """

    __slots__ = ("count", "columns")

    def __init__(self, count, columns):
        #: The number of records.
        self.count = count
        #: Feature name -> `Column`, in the order the names first appear.
        self.columns = columns

    @classmethod
    def decode(cls, records, path=None, first_index=0):
        """Decodes a list of serialized Examples (bytes). A record that is not an Example raises
        `MalformedExampleError` with its index (`first_index` plus its position; `path` names
        its file in the message); a feature of two kinds raises `InconsistentFeatureError`."""
        if type(records) is not list:
            records = list(records)
        return _decode_batch(records, path, first_index)

    def __len__(self):
        return self.count

    def __getitem__(self, key):
        return self.columns[key]

    def __contains__(self, key):
        return key in self.columns

    def __iter__(self):
        return iter(self.columns)

    def keys(self):
        return self.columns.keys()

    def items(self):
        return self.columns.items()

    def get(self, key, default=None):
        return self.columns.get(key, default)

    def examples(self):
        """The records as `Example` objects, as `Example.parse` gives them but that a feature with
        no kind set comes back as an empty list of its column's kind when other records set one."""
        examples = [Example() for _ in range(self.count)]
        for key, column in self.columns.items():
            kind, values, splits, present = column.kind, column.values, column.row_splits, column.present
            for index, example in enumerate(examples):
                if present[index]:
                    feature = Feature.__new__(Feature)
                    feature.kind = kind
                    feature.values = list(values[splits[index]:splits[index + 1]])
                    example.features[key] = feature
        return examples

    def __repr__(self):
        return "ExampleBatch(%d records, %r)" % (self.count, self.columns)


class _ColumnBuilder:
    __slots__ = ("kind", "first_index", "values", "counts", "present")

    def __init__(self, count):
        self.kind = None
        self.first_index = 0
        self.values = None
        self.counts = _array("q", bytes(8 * count))
        self.present = bytearray(count)

    def set_kind(self, key, kind, index):
        if self.kind is None:
            self.kind = kind
            self.first_index = index
            self.values = (_array("f") if kind == _FLOAT_LIST else _array("q") if kind == _INT64_LIST else [])
        elif kind != self.kind:
            raise InconsistentFeatureError(key, self.kind, self.first_index, kind, index)


def _decode_batch(records, path, first_index):
    count = len(records)
    builders = {}
    templates = _COLUMN_TEMPLATES
    start = 0
    for length, run in _groupby(map(len, records)):
        size = len(list(run))
        stop = start + size
        done = False
        if size >= _COLUMN_RUN_MIN and _LITTLE_ENDIAN:
            template = templates.get(length)
            if template is None:
                template = _column_template(records[start])
                if template is not None and len(templates) < _TEMPLATE_LIMIT:
                    templates[length] = template
            if template is not None:
                done = _decode_run(records, start, stop, template, builders, count, first_index)
                if not done:
                    # The layout changed: later runs of this length are likelier to look like this one.
                    replacement = _column_template(records[start])
                    if replacement is not None:
                        templates[length] = replacement
                        done = _decode_run(records, start, stop, replacement, builders, count, first_index)
        if not done:
            for index in range(start, stop):
                _add_record(records[index], index, builders, count, path, first_index)
        start = stop
    columns = {}
    for key, builder in builders.items():
        values = builder.values if builder.values is not None else []
        columns[key] = Column(builder.kind, values, builder.counts, builder.present)
    return ExampleBatch(count, columns)


def _add_record(record, index, builders, count, path, first_index):
    try:
        features = _parse_example(record)
    except ExampleDecodeError as error:
        raise MalformedExampleError(path, first_index + index, error) from None
    for key, feature in features.items():
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = _ColumnBuilder(count)
        values = feature.values
        if feature.kind is not None:
            builder.set_kind(key, feature.kind, first_index + index)
            builder.values.extend(values)
        builder.counts[index] = len(values)
        builder.present[index] = 1


def _decode_run(records, start, stop, template, builders, count, first_index):
    """Decodes records[start:stop] (all of the template's length) with the template; False,
    having changed nothing, when one of them does not have the template's layout."""
    structure, plan, record_size = template
    size = stop - start
    joined = b"".join(records[start:stop])
    # Byte p of every record is joined[p::record_size]: one strided slice checks a structural
    # byte, or gathers a value byte, for the whole run.
    for offset, value in structure:
        if joined[offset::record_size].count(value) != size:
            return False
    decoded = []
    for key, kind, fields, widths in plan:
        if not fields:
            values = None
        elif kind == _BYTES_LIST:
            # One struct over the record with this feature's values as its fields (the rest
            # padding): its tuples, chained, are the values in record order.
            values = list(_chain_from_iterable(fields(joined)))
        else:
            offset, width = fields[0]
            if width <= 32 or kind == _INT64_LIST:
                gathered = bytearray(width * size)
                for byte in range(width):
                    gathered[byte::width] = joined[offset + byte::record_size]
            else:
                gathered = b"".join([joined[at:at + width] for at in range(offset, len(joined), record_size)])
            if kind == _INT64_LIST:
                values = _varint_lanes(gathered, size, widths)
                if values is None:
                    return False
            else:
                values = _array("f")
                values.frombytes(gathered)
        decoded.append(values)
    per_record = _array("q", [0])
    for (key, kind, fields, widths), values in zip(plan, decoded):
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = _ColumnBuilder(count)
        if kind is not None:
            builder.set_kind(key, kind, first_index + start)
        builder.present[start:stop] = b"\x01" * size
        if values is not None:
            builder.values.extend(values)
            per_record[0] = len(values) // size
            builder.counts[start:stop] = per_record * size
    return True


_VARINT_MASKS = {}


def _varint_masks(widths, count):
    """(continuation bits, their expected values, the 7-bit group of each byte position) over at
    least `count` lists of varints of `widths`, as big integers; cached per widths, with room
    for twice what was asked so that runs of other lengths reuse them."""
    masks = _VARINT_MASKS.get(widths)
    if masks is not None and masks[0] >= count:
        return masks
    capacity = max(2 * count, 64)
    lane = _varint_lane(widths)
    per_list = len(widths)
    continuation = bytearray(lane * per_list)
    expected = bytearray(lane * per_list)
    for slot, width in enumerate(widths):
        for byte in range(width):
            continuation[slot * lane + byte] = 0x80
            if byte < width - 1:
                expected[slot * lane + byte] = 0x80
    groups = []
    for byte in range(max(widths)):
        group = 0x7F if byte < 9 else 0x01  # a tenth byte contributes its lowest bit only
        pattern = (group << (7 * byte)).to_bytes(lane, "little")
        groups.append(int.from_bytes(pattern * (capacity * per_list), "little"))
    masks = (capacity, int.from_bytes(bytes(continuation) * capacity, "little"),
             int.from_bytes(bytes(expected) * capacity, "little"), groups)
    if len(_VARINT_MASKS) < 256 or widths in _VARINT_MASKS:
        _VARINT_MASKS[widths] = masks
    return masks


def _varint_lanes(packed, count, widths):
    """The int64 values of `count` packed lists that each hold varints of the byte widths
    `widths` (the template's), as array('q'); `packed` is the lists one after another. None when
    a varint does not have its template width (a continuation bit differs).

    Every varint gets a little-endian lane of one big integer (8 bytes, 16 for varints longer
    than 8 bytes, as negative values are); its 7-bit groups are then moved together with one
    shift and mask per byte position, for all values at once."""
    per_list = len(widths)
    lane = _varint_lane(widths)
    total = count * per_list
    spread = bytearray(lane * total)
    list_size = sum(widths)
    offset = 0
    for slot, width in enumerate(widths):
        for byte in range(width):
            spread[slot * lane + byte::lane * per_list] = packed[offset + byte::list_size]
        offset += width
    _, continuation, expected, groups = _varint_masks(widths, count)
    lanes = int.from_bytes(spread, "little")
    # The masks may be longer than `lanes`: & truncates them, and `expected` is cut to size.
    if lanes & continuation != expected & ((1 << (8 * lane * total)) - 1):
        return None
    value = 0
    for byte, group in enumerate(groups):
        value |= (lanes >> byte) & group
    values = _array("q")
    values.frombytes(value.to_bytes(lane * total, "little"))
    return values if lane == 8 else values[::2]  # the low 8 bytes of each lane: the signed int64


def _varint_lane(widths):
    return 8 if max(widths) <= 8 else 16


def _column_template(data):
    """The column template of a record in TensorFlow's layout, or None: ([(offset, byte)] for
    every structural byte, [(key, kind, [(offset, width)] of its value fields, varint widths)],
    the record's length)."""
    try:
        features = _parse_canonical(data)
    except (IndexError, UnicodeDecodeError, ExampleDecodeError):
        return None
    if features is None:
        return None
    plan = []
    value_bytes = bytearray(len(data))  # 1 where a value is
    end = len(data)
    length, pos = _read_varint(data, 1, end)
    keys = set()
    while pos < end:
        length, pos = _read_varint(data, pos + 1, end)
        stop = pos + length
        length, pos = _read_varint(data, pos + 1, stop)
        key = data[pos:pos + length].decode("utf-8")
        if key in keys:
            return None  # a repeated name: the last one wins, which a template does not express
        keys.add(key)
        length, at = _read_varint(data, pos + length + 1, stop)
        kind = _KIND_FOR_TAG[data[at]] if at < stop else None
        if at < stop:
            length, at = _read_varint(data, at + 1, stop)
        if at == stop:
            plan.append((key, kind, (), ()))
            pos = stop
            continue
        size, at = _read_varint(data, at + 1, stop)
        fields = []
        widths = []
        if kind == _BYTES_LIST:
            while True:
                fields.append((at, size))
                at += size
                if at == stop:
                    break
                size, at = _read_varint(data, at + 1, stop)
        else:
            fields.append((at, stop - at))
            while kind == _INT64_LIST and at < stop:
                value, after = _read_varint(data, at, stop)
                widths.append(after - at)
                at = after
        for offset, width in fields:
            value_bytes[offset:offset + width] = b"\x01" * width
        if kind == _BYTES_LIST:
            formats, previous = [], 0
            for offset, width in fields:
                formats.append("%dx%ds" % (offset - previous, width))
                previous = offset + width
            formats.append("%dx" % (end - previous))
            fields = struct.Struct("".join(formats)).iter_unpack
        plan.append((key, kind, fields, tuple(widths)))
        pos = stop
    structure = [(offset, data[offset]) for offset in range(end) if not value_bytes[offset]]
    return structure, plan, end


# ==============================================================================================
# Sharded artifacts
# ==============================================================================================
#
# An artifact of examples is a directory of shards `<prefix>-NNNNN-of-MMMMM.tfrecord[.gz|.zlib]`,
# NNNNN the 0-based shard index and MMMMM the shard count, both zero-padded to at least five
# digits: `data-00000-of-00004.tfrecord.gz`. The Swift library reads and names them the same way.

_SHARD_SUFFIX = re.compile(r"([0-9]{5,})-of-([0-9]{5,})(\.tfrecord(?:\.gz|\.zlib)?)\Z")


def shard_file_name(index, count, prefix="data", compression=None):
    """The name of shard `index` (0-based) of `count`:
    `shard_file_name(2, 4, compression="GZIP") == "data-00002-of-00004.tfrecord.gz"`."""
    compression = _normalize_compression(compression, allow_detect=False)
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
        raise ValueError("shard index %r is not in 0..%r - 1" % (index, count))
    return "%s-%05d-of-%05d%s" % (prefix, index, count, _EXTENSIONS[compression])


def parse_shard_file_name(name, prefix="data"):
    """(index, count) from a shard file name, or None if `name` is not one."""
    if not name.startswith(prefix + "-"):
        return None
    match = _SHARD_SUFFIX.match(name, len(prefix) + 1)
    if match is None or int(match.group(2)) == 0:
        return None
    return int(match.group(1)), int(match.group(2))


def shard_paths(directory, prefix="data"):
    """The paths of the shards `<prefix>-NNNNN-of-MMMMM.tfrecord[.gz|.zlib]` in `directory`, in
    shard order, after checking that they form one complete set (one count, every index from 0
    to count - 1 exactly once). Other files are ignored. Raises `NoShardsError` or
    `InconsistentShardsError` (and OSError when the directory cannot be listed)."""
    directory = os.fspath(directory)
    shards = []
    for name in os.listdir(directory):
        parsed = parse_shard_file_name(name, prefix)
        if parsed is not None:
            shards.append((name, parsed[0], parsed[1]))
    if not shards:
        raise NoShardsError(directory, prefix)
    shards.sort()
    first_name, _, count = shards[0]
    for name, _, other_count in shards:
        if other_count != count:
            raise InconsistentShardsError(
                directory, prefix, "%s says there are %d shards but %s says %d; remove the stale ones"
                % (first_name, count, name, other_count))
    by_index = {}
    for name, index, _ in shards:
        if index >= count:
            raise InconsistentShardsError(directory, prefix, "%s has an index beyond the shard count" % name)
        if index in by_index:
            raise InconsistentShardsError(directory, prefix, "shard %d is there twice, as %s and %s; remove one"
                                          % (index, by_index[index], name))
        by_index[index] = name
    if len(by_index) != count:
        missing = []
        index = 0
        while len(missing) < 6:
            if index not in by_index:
                missing.append(index)
            index += 1
            if index >= count:
                break
        listed = ", ".join(str(index) for index in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise InconsistentShardsError(
            directory, prefix, "%d of %d shards are missing (index %s); the artifact was not fully written"
            % (count - len(by_index), count, listed))
    return [os.path.join(directory, by_index[index]) for index in range(count)]


def _input_paths(path, prefix):
    return shard_paths(path, prefix) if os.path.isdir(path) else [os.fspath(path)]


def read_records(path, compression=None, prefix="data"):
    """Every record (bytes) of a TFRecord file, or of every shard of an artifact directory in
    shard order (see `shard_paths`), as an iterator. The shard set is checked at once; each file
    is opened when reading reaches it."""
    paths = _input_paths(path, prefix)

    def records():
        for file_path in paths:
            with TFRecordReader(file_path, compression=compression) as reader:
                for record in reader:
                    yield record

    return records()


def read_examples(path, prefix="data", compression=None, as_dict=False):
    """Every record of a TFRecord file or artifact directory decoded as an `Example` (or, with
    `as_dict=True`, as `Example.to_dict()`), as an iterator:

        for example in read_examples(request["inputs"]["data"][0]["path"]):
            label = example["label"].values[0]

    Shards are read in shard order. A record that is not an Example raises
    `MalformedExampleError` naming its file and index."""
    paths = _input_paths(path, prefix)

    def examples():
        # _parse_record inlined for the fast path: two calls fewer per record.
        new_example = Example.__new__
        parse = _parse_with_template
        declined = (IndexError, UnicodeDecodeError, struct.error, ExampleDecodeError)
        for file_path in paths:
            with TFRecordReader(file_path, compression=compression) as reader:
                for record in reader:
                    try:
                        features = parse(record)
                    except declined:
                        features = None
                    if features is None:
                        example = _parse_record(record, file_path, reader.record_index - 1)
                    else:
                        example = new_example(Example)
                        example.features = features
                    yield example.to_dict() if as_dict else example

    return examples()


def read_example_batches(path, batch_size=None, prefix="data", compression=None):
    """The records of a TFRecord file or artifact directory (shards in shard order) decoded into
    `ExampleBatch`es, one `Column` per feature, as an iterator:

        for batch in read_example_batches(request["inputs"]["data"][0]["path"], batch_size=1024):
            x = batch["x"].values                   # array('f'): the batch's x values, record order
            ids = batch["id"].values                # array('q')

    With `batch_size`, every batch but the last holds exactly that many records; without it,
    a batch is what one read buffer holds (about 256 KiB of records), the fastest. Several times
    faster than `read_examples` when records share a layout, and the same values. Damage raises
    the reader's errors and a record that is not an Example `MalformedExampleError`, each with
    its record index, after the intact records before it were yielded."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError("batch_size must be a positive integer or None, not %r" % (batch_size,))
    paths = _input_paths(path, prefix)

    def batches():
        for file_path in paths:
            with TFRecordReader(file_path, compression=compression) as reader:
                if batch_size is None:
                    yield from reader.example_batches()
                    continue
                waiting, first_index = [], 0
                while True:
                    try:
                        batch = reader.read_batch()
                    except TFRecordError:
                        if waiting:  # the intact records before the damage first
                            yield _decode_batch(waiting, file_path, first_index)
                        raise
                    if not batch:
                        break
                    waiting += batch
                    while len(waiting) >= batch_size:
                        yield _decode_batch(waiting[:batch_size], file_path, first_index)
                        del waiting[:batch_size]
                        first_index += batch_size
                if waiting:
                    yield _decode_batch(waiting, file_path, first_index)

    return batches()


class ExampleWriter:
    """Writes examples into an artifact directory as `shards` TFRecord shards:

        with ExampleWriter(request["outputs"]["examples"]["path"], shards=4, compression="GZIP") as out:
            out.write({"id": 7, "x": [0.5, 1.5], "label": "cat"})     # a dict, as Example.from_dict
            out.write(example)                                       # an Example
            out.write(serialized)                                    # or a serialized one (bytes)

    Every shard file is created at once (an empty shard is a valid TFRecord file). Record `i`
    goes to shard `i % shards`, so shards stay balanced; readers read shard after shard, so with
    more than one shard the read order differs from the write order (use `shards=1` when order
    matters). The files are deterministic: the same examples give the same bytes.
    """

    def __init__(self, output_dir, shards=1, compression=None, prefix="data", compression_level=None):
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise ValueError("shards must be a positive integer, not %r" % (shards,))
        self.directory = os.fspath(output_dir)
        self.compression = _normalize_compression(compression, allow_detect=False)
        os.makedirs(self.directory, exist_ok=True)
        #: The shard files, in shard order.
        self.paths = [os.path.join(self.directory, shard_file_name(index, shards, prefix, self.compression))
                      for index in range(shards)]
        #: The number of records written so far.
        self.record_count = 0
        self._writers = []
        try:
            for path in self.paths:
                self._writers.append(TFRecordWriter(path, self.compression, compression_level))
        except BaseException:
            for writer in self._writers:
                writer.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def write(self, example):
        """Appends an `Example`, a dict (converted by `Example.from_dict`) or serialized bytes."""
        if isinstance(example, Example):
            record = example.serialize()
        elif isinstance(example, dict):
            record = Example.from_dict(example).serialize()
        else:
            record = example
        writers = self._writers
        writers[self.record_count % len(writers)].write(record)
        self.record_count += 1

    def close(self):
        """Finishes and closes every shard; the first error, if any, is raised after all are closed."""
        first_error = None
        for writer in self._writers:
            try:
                writer.close()
            except BaseException as error:
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error


def write_examples(output_dir, examples, shards=1, compression=None, prefix="data"):
    """Writes an iterable of examples (Examples, dicts or bytes) as shards into `output_dir`
    (see `ExampleWriter`) and returns how many were written."""
    with ExampleWriter(output_dir, shards=shards, compression=compression, prefix=prefix) as writer:
        for example in examples:
            writer.write(example)
    return writer.record_count
