"""csv-source: a CSV file with a header row -> an Examples artifact of tf.Example TFRecords.

Two streaming passes over the file, so memory stays flat whatever its size: the first infers
each column's type (INT when every present value is a 64-bit integer, FLOAT when every present
value is a number, STRING otherwise), the second writes one Example per row. A missing value
(one of `missing_values`) leaves the feature out of that row's Example.
"""

import csv
import math
import sys

from zenml_step import ExampleWriter, Feature, Example, fail, log, read_request, write_response

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
    with handle:
        header = read_header(reader, path)
        types = [None] * len(header)  # None: no present value seen yet
        first_number_line = [None] * len(header)
        count = 0
        for row in rows(reader, path, len(header)):
            count += 1
            for index, text in enumerate(row):
                text = text.strip()
                if text in missing or types[index] == "STRING":
                    continue
                kind = classify(text)
                if kind == "STRING" and types[index] is not None and on_mismatch == "error":
                    fail("%s line %d: column %r holds %r, which is not a number, but earlier rows (from line %d) "
                         "hold numbers; fix the value, add it to missing_values, or set on_type_mismatch: string"
                         % (path, reader.line_num, header[index], text, first_number_line[index]))
                if types[index] is None and kind != "STRING":
                    first_number_line[index] = reader.line_num
                if types[index] is None or RANK[kind] > RANK[types[index]]:
                    types[index] = kind
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

    converters = []
    for name, kind in zip(header, types):
        if kind == "INT":
            converters.append((name, kind, lambda text: Feature.int64_list([int(text)])))
        elif kind == "FLOAT":
            converters.append((name, kind, lambda text: Feature.float_list([float(text)])))
        elif kind == "STRING":
            converters.append((name, kind, lambda text: Feature.bytes_list([text.encode("utf-8")])))
        else:
            converters.append((name, kind, None))  # no present value anywhere: never written

    written = 0
    handle, reader = open_rows(path, delimiter)
    with handle, ExampleWriter(request["outputs"]["examples"]["path"], shards=config.get("shards", 1),
                               compression=config.get("compression", "GZIP")) as out:
        read_header(reader, path)
        for row in rows(reader, path, len(header)):
            features = {}
            for (name, kind, convert), text in zip(converters, row):
                text = text.strip()
                if convert is None or text in missing:
                    continue
                try:
                    features[name] = convert(text)
                except (ValueError, OverflowError):
                    fail("%s line %d: column %r (%s) holds %r, which is not a valid %s"
                         % (path, reader.line_num, name, kind, text, kind))
            out.write(Example(features))
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
