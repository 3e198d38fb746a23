"""csv-source: a CSV file with a header row -> an Examples artifact of tf.Example TFRecords.

Two streaming passes over the file, so memory stays flat whatever its size: the first infers
each column's type (INT when every present value is a 64-bit integer, FLOAT when every present
value is a number, STRING otherwise), the second writes one Example per row. A missing value
(one of `missing_values`) leaves the feature out of that row's Example.
"""

import csv
import math
import struct
import sys

from zenml_step import ExampleWriter, fail, log, read_request, write_response

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
csv.field_size_limit(sys.maxsize)


def open_rows(path, delimiter):
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as error:
        fail("cannot open the CSV file %s: %s" % (path, error.strerror))
    return handle, csv.reader(handle, delimiter=delimiter)


def read_header(reader, path):
    try:
        header = next(reader)
    except StopIteration:
        fail("%s is empty: a CSV file needs at least a header row naming its columns" % path)
    header = [name.strip() for name in header]
    for index, name in enumerate(header):
        if not name:
            fail("%s: column %d of the header row has no name; name every column" % (path, index + 1))
    seen = set()
    for name in header:
        if name in seen:
            fail("%s: the header names column %r twice; column names must be unique" % (path, name))
        seen.add(name)
    return header


def classify(text):
    """INT, FLOAT or STRING for one present value."""
    try:
        value = int(text)
        return "INT" if INT64_MIN <= value <= INT64_MAX else "FLOAT"
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return "STRING"
    return "FLOAT" if math.isfinite(value) else "STRING"


RANK = {"INT": 0, "FLOAT": 1, "STRING": 2}
CACHE_LIMIT = 4096  # encoded values kept per column


# ---- tf.train.Example encoding, specialized ------------------------------------------------------
#
# Every feature here holds exactly one value, so each row's Example is assembled from per-column
# byte prefixes computed once, which is about three times faster than building Feature objects
# and serializing them. The bytes are exactly the SDK's Example.serialize() (TensorFlow's
# deterministic serialization: features sorted by name, lists packed); a test checks that.

def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(tag, payload):
    return tag + varint(len(payload)) + payload


def feature_body(kind, text):
    """The serialized Feature holding one value parsed from `text`."""
    if kind == "INT":
        value = int(text)
        packed = varint(value if value >= 0 else value + (1 << 64))
        return length_delimited(b"\x1a", length_delimited(b"\x0a", packed))
    if kind == "FLOAT":
        return b"\x12\x06\x0a\x04" + struct.pack("<f", float(text))
    return length_delimited(b"\x0a", length_delimited(b"\x0a", text.encode("utf-8")))


def map_entry(name, body):
    """One entry of Features.feature: the key, then the Feature."""
    return length_delimited(b"\x0a", length_delimited(b"\x0a", name.encode("utf-8")) + length_delimited(b"\x12", body))


def rows(reader, path, width):
    for row in reader:
        if not row:
            continue  # csv gives [] for a blank line
        if len(row) != width:
            fail("%s line %d has %d fields but the header has %d; fix the row or quote fields that contain "
                 "the delimiter" % (path, reader.line_num, len(row), width))
        yield row


def infer_types(path, delimiter, missing, overrides, on_mismatch):
    handle, reader = open_rows(path, delimiter)
    strict = on_mismatch == "error"
    with handle:
        header = read_header(reader, path)
        types = [None] * len(header)  # None: no present value seen yet
        first_number = [None] * len(header)  # line of the first number, per column
        first_text = [None] * len(header)  # (line, value) of the first non-number, per column
        count = 0
        for row in rows(reader, path, len(header)):
            count += 1
            for index, text in enumerate(row):
                text = text.strip()
                if text in missing or (types[index] == "STRING" and not strict):
                    continue
                kind = classify(text)
                if kind == "STRING":
                    if first_text[index] is None:
                        first_text[index] = (reader.line_num, text)
                elif first_number[index] is None:
                    first_number[index] = reader.line_num
                if types[index] is None or RANK[kind] > RANK[types[index]]:
                    types[index] = kind
    if strict:
        # A column holding numbers and other text: name the first value that is not a number.
        for index, name in enumerate(header):
            if first_number[index] is not None and first_text[index] is not None and name not in overrides:
                line, text = first_text[index]
                fail("%s line %d: column %r holds %r, which is not a number, but other rows (from line %d) hold "
                     "numbers; fix the value, add it to missing_values, or set on_type_mismatch: string"
                     % (path, line, name, text, first_number[index]))
    for name, kind in overrides.items():
        if name not in header:
            fail("column_types names %r, which is not a column of %s (columns: %s)" % (name, path, ", ".join(header)))
        types[header.index(name)] = kind
    return header, types, count


def main():
    request = read_request()
    config = request["config"]
    path = config["path"]
    delimiter = config.get("delimiter", ",")
    if len(delimiter) != 1:
        fail("delimiter must be one character, not %r" % delimiter)
    missing = set(config.get("missing_values", ["", "NA", "NaN"]))
    overrides = config.get("column_types") or {}
    for name, kind in overrides.items():
        if kind not in RANK:
            fail("column_types.%s is %r; use INT, FLOAT or STRING" % (name, kind))
    on_mismatch = config.get("on_type_mismatch", "string")

    header, types, count = infer_types(path, delimiter, missing, overrides, on_mismatch)
    log("columns:", ", ".join("%s:%s" % (n, t or "all missing") for n, t in zip(header, types)))

    # Columns in feature-name order (as serialized), each with its type; all-missing ones left out.
    # Each column caches the encoded entries of its recent values: categorical and rounded values
    # repeat, and a hit skips parsing and encoding.
    columns = [(name, index, kind, {}) for name, index, kind in
               sorted((name, index, kind) for index, (name, kind) in enumerate(zip(header, types)) if kind is not None)]
    written = 0
    handle, reader = open_rows(path, delimiter)
    with handle, ExampleWriter(request["outputs"]["examples"]["path"], shards=config.get("shards", 1),
                               compression=config.get("compression", "GZIP")) as out:
        read_header(reader, path)
        for row in rows(reader, path, len(header)):
            parts = []
            for name, index, kind, cache in columns:
                text = row[index].strip()
                part = cache.get(text)
                if part is None:
                    if text in missing:
                        continue
                    try:
                        part = map_entry(name, feature_body(kind, text))
                    except (ValueError, OverflowError, struct.error):
                        fail("%s line %d: column %r (%s) holds %r, which is not a valid %s%s"
                             % (path, reader.line_num, name, kind, text, kind,
                                " (float32 ranges to about 3.4e38)" if kind == "FLOAT" else ""))
                    if len(cache) >= CACHE_LIMIT:
                        cache.clear()
                    cache[text] = part
                parts.append(part)
            out.write(length_delimited(b"\x0a", b"".join(parts)))
            written += 1
    if written != count:
        fail("%s changed while it was being read (%d rows, then %d); run again" % (path, count, written))

    present = [(n, t) for n, t in zip(header, types) if t is not None]
    empty = [n for n, t in zip(header, types) if t is None]
    if empty:
        log("warning: columns with no value in any row (left out of every Example):", ", ".join(empty))
    properties = {
        "records": written,
        "features": ",".join("%s:%s" % pair for pair in present),
        "columns": len(header),
    }
    if empty:
        properties["all_missing_columns"] = ",".join(empty)
    write_response(outputs={"examples": properties}, metrics={"records": written},
                   message="%d records, %d features" % (written, len(present)))


if __name__ == "__main__":
    main()
