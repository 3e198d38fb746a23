"""Tests for the batch API of the Python step SDK: `TFRecordReader.read_batch`/`batches`,
`ExampleBatch` (columns per feature), `read_example_batches`, and the fixed-length fast paths of
the reader and writer behind them.

Every column result is checked against `Example.parse` record by record (the general decoder is
the reference), on TensorFlow's own files in shared/testdata/tfrecord/ and on random records whose
layout changes mid-batch.
"""

import gzip
import os
import random
import struct
import sys
from array import array

import pytest

PROTOCOL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(PROTOCOL_DIR, "python"))

import zenml_step as z  # noqa: E402
from zenml_step import Example, Feature  # noqa: E402


def write_records(path, records, **options):
    with z.TFRecordWriter(str(path), **options) as writer:
        writer.write_records(records)
    return str(path)


def assert_batch_matches(batch, records):
    """`batch` holds exactly what Example.parse gives for each record."""
    parsed = [Example.parse(record) for record in records]
    assert len(batch) == len(records)
    assert batch.examples() == parsed
    for key, column in batch.items():
        assert len(column) == len(records)
        assert column.row_splits[0] == 0 and column.row_splits[-1] == len(column.values)
        for index, example in enumerate(parsed):
            feature = example.get(key)
            assert column.present[index] == (feature is not None), (key, index)
            expected = feature.values if feature is not None else []
            row = column.row(index)
            if column.kind == "float_list":
                assert struct.pack("<%df" % len(row), *row) == struct.pack("<%df" % len(expected), *expected)
            else:
                assert row == expected, (key, index)
            if feature is not None and feature.kind is not None:
                assert feature.kind == column.kind
    assert set(batch.keys()) == {key for example in parsed for key in example}


# ---- TensorFlow's files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["examples.tfrecord", "examples.gz.tfrecord", "examples.zlib.tfrecord"])
@pytest.mark.parametrize("batch_size", [None, 1, 3, 20, 1000])
def test_tensorflow_examples_decode_into_columns_exactly(tfrecord_vectors, name, batch_size):
    records = tfrecord_vectors.record_bytes(name)
    batches = list(z.read_example_batches(tfrecord_vectors.path(name), batch_size=batch_size))
    if batch_size is not None:
        assert [len(batch) for batch in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert sum(map(len, batches)) == len(records)
    start = 0
    for batch in batches:
        assert_batch_matches(batch, records[start:start + len(batch)])
        start += len(batch)


def test_tensorflow_columns_hold_the_described_values(tfrecord_vectors):
    described = tfrecord_vectors.records("examples.tfrecord")
    (batch,) = z.read_example_batches(tfrecord_vectors.path("examples.tfrecord"))
    assert batch["id"].kind == "int64_list" and isinstance(batch["id"].values, array)
    assert list(batch["id"].values) == [int(record["features"]["id"]["values"][0]) for record in described]
    assert batch["id"].values[16] == 4294967296 and batch["id"].values[17] == -1
    assert batch["x"].values.typecode == "f"
    assert batch["x"].row(1) == [1.5, -0.25, 0.125]
    # label is missing from records 3, 8, 13, 18; tags is present everywhere, empty in record 0.
    assert [index for index, flag in enumerate(batch["label"].present) if not flag] == [3, 8, 13, 18]
    assert batch["tags"].present == bytearray(b"\x01" * 20) and batch["tags"].row(0) == []


def test_batches_of_raw_records_are_the_records(tfrecord_vectors):
    for name in ("raw.tfrecord", "examples.tfrecord", "examples.gz.tfrecord", "empty.tfrecord"):
        with z.TFRecordReader(tfrecord_vectors.path(name)) as reader:
            batches = list(reader.batches())
            assert reader.read_batch() == []
        assert [record for batch in batches for record in batch] == tfrecord_vectors.record_bytes(name)
        assert all(batches)


def test_the_corrupt_vector_file_fails_at_its_record(tfrecord_vectors):
    """Batches stop where the per-record reader stops, with the same error and index."""
    path = tfrecord_vectors.path("corrupt.tfrecord")
    got = []
    with pytest.raises(z.TFRecordError) as expected:
        for record in z.TFRecordReader(path):
            got.append(record)
    batched = []
    with z.TFRecordReader(path) as reader:
        with pytest.raises(type(expected.value)) as caught:
            for batch in reader.batches():
                batched += batch
    assert batched == got and caught.value.record_index == expected.value.record_index


# ---- Random records -----------------------------------------------------------------------------


def random_example(rng, layout):
    """An example of one of a few layouts; within a layout, list sizes and varint widths vary
    only when `layout` says so, so runs of one length and one layout are common."""
    if layout == 0:  # the benchmark's
        i = rng.randrange(1 << 20)
        return Example({"floats": Feature.float_list([i * 0.5, -i * 0.25]), "id": Feature.int64_list([i]),
                        "payload": Feature.bytes_list([struct.pack("<QQ", i, i * 7)])})
    if layout == 1:  # negative and huge ints (10-byte varints), several values per list
        return Example({"a": Feature.int64_list([rng.choice((-1, -(1 << 63), (1 << 63) - 1, 5))
                                                 for _ in range(3)]),
                        "b": Feature.bytes_list([b"ab", bytes([rng.randrange(256)]) * 3])})
    if layout == 2:  # empty lists, an unset feature, a name that sorts first
        return Example({"": Feature.float_list([]), "k": Feature.unset(),
                        "z": Feature.int64_list([rng.randrange(128)])})
    if layout == 3:  # varying lengths: the general path
        return Example({"text": Feature.bytes_list([bytes(rng.randrange(256) for _ in range(rng.randrange(40)))]),
                        "v": Feature.float_list([rng.uniform(-1e6, 1e6) for _ in range(rng.randrange(5))])})
    # layout 4: a wide float feature (gathered record by record, not byte by byte)
    return Example({"pixels": Feature.float_list([rng.uniform(-1, 1) for _ in range(50)]),
                    "label": Feature.int64_list([rng.randrange(10)])})


@pytest.mark.parametrize("seed", range(6))
def test_random_batches_with_layout_changes_match_the_per_record_decoder(seed):
    rng = random.Random(seed)
    records = []
    while len(records) < 3000:
        layout = rng.randrange(5)
        run = rng.choice((1, 2, 5, 50, 400))
        records += [random_example(rng, layout).serialize() for _ in range(run)]
    for size in (len(records), 7, 256):
        for start in range(0, len(records), size):
            assert_batch_matches(z.ExampleBatch.decode(records[start:start + size]), records[start:start + size])


def test_a_layout_change_inside_a_run_of_one_length_is_noticed():
    """Same length, different structure or varint widths mid-run: decoded exactly, never by the
    stale template."""
    a = [Example({"ab": Feature.int64_list([300]), "c": Feature.float_list([1.0])}).serialize() for _ in range(10)]
    b = [Example({"ba": Feature.int64_list([300]), "c": Feature.float_list([2.0])}).serialize() for _ in range(10)]
    # one 2-byte varint then a 1-byte one, against a 1-byte one then a 2-byte one: same length
    c = [Example({"ab": Feature.int64_list([300, 1]), "c": Feature.float_list([1.0])}).serialize()]
    d = [Example({"ab": Feature.int64_list([1, 300]), "c": Feature.float_list([1.0])}).serialize()]
    assert len(c[0]) == len(d[0])
    for records in (a + b, b + a, a[:5] + b + a[5:], c * 6 + d * 6, d * 6 + c * 6, (c + d) * 6):
        assert len(set(map(len, records))) == 1
        assert_batch_matches(z.ExampleBatch.decode(records), records)


def test_a_varint_that_changes_width_mid_run_is_decoded_exactly():
    records = [Example({"n": Feature.int64_list([value])}).serialize()
               for value in (1, 2, 3, 4, 5, 127, 126, 128, 129, 16383, 16384, -1, 0, 1)]
    assert_batch_matches(z.ExampleBatch.decode(records), records)


def test_columns_are_arrays_that_numpy_style_code_can_reshape():
    records = [Example({"x": Feature.float_list([i, i + 0.5]), "n": Feature.int64_list([i, -i])}).serialize()
               for i in range(100)]
    batch = z.ExampleBatch.decode(records)
    x, n = batch["x"], batch["n"]
    assert x.values.typecode == "f" and n.values.typecode == "q"
    assert list(x.row_lengths) == [2] * 100 and list(x.row_splits) == list(range(0, 202, 2))
    assert memoryview(x.values).nbytes == 800 and list(n.values[:4]) == [0, 0, 1, -1]


def test_a_feature_of_two_kinds_in_one_batch_is_refused_with_its_records():
    records = [Example({"f": Feature.float_list([1.0])}).serialize() for _ in range(6)]
    records.insert(4, Example({"f": Feature.int64_list([1])}).serialize())
    with pytest.raises(z.InconsistentFeatureError) as caught:
        z.ExampleBatch.decode(records, first_index=100)
    assert caught.value.key == "f" and caught.value.record_index == 104
    assert "float_list in record 100" in str(caught.value)


def test_a_record_that_is_not_an_example_names_its_index(tmp_path):
    records = [Example({"x": Feature.int64_list([i])}).serialize() for i in range(50)]
    records[37] = b"\x0a\x05\x0a"  # a features field longer than the record
    path = write_records(tmp_path / "bad.tfrecord", records)
    got = []
    with pytest.raises(z.MalformedExampleError) as caught:
        for batch in z.read_example_batches(path, batch_size=10):
            got.append(len(batch))
    assert caught.value.record_index == 37 and caught.value.path == path
    assert got == [10, 10, 10]


@pytest.mark.parametrize("index", [0, 1, 999, 1000, 2500, 2999, 3003])
@pytest.mark.parametrize("batch_size", [None, 64])
def test_a_corrupt_crc_inside_a_batch_names_the_record_after_yielding_the_intact_ones(tmp_path, index, batch_size):
    rng = random.Random(index)
    records = [random_example(rng, 0).serialize() for _ in range(3000)] + [b"x" * i for i in range(5)]
    path = write_records(tmp_path / "data.tfrecord", records)
    data = bytearray(open(path, "rb").read())
    offset = sum(len(record) + 16 for record in records[:index]) + 12 + len(records[index])  # its data CRC
    data[offset] ^= 0x01
    open(path, "wb").write(bytes(data))
    got = []
    with pytest.raises(z.CorruptDataError) as caught:
        if index < 3000:  # the records from 3000 on are not Examples: read them raw
            for batch in z.read_example_batches(path, batch_size=batch_size):
                got += batch.examples()
        with z.TFRecordReader(path) as reader:
            for batch in reader.batches():
                got += batch
    assert caught.value.record_index == index and caught.value.path == path
    if index < 3000:
        assert got == [Example.parse(record) for record in records[:index]]
    else:
        assert got == records[:index]


def test_a_corrupt_length_header_inside_a_run_names_the_record(tmp_path):
    records = [b"%06d" % i for i in range(2000)]
    path = write_records(tmp_path / "data.tfrecord", records)
    data = bytearray(open(path, "rb").read())
    data[1234 * 22 + 9] ^= 0x10  # a byte of record 1234's length CRC
    open(path, "wb").write(bytes(data))
    got = []
    with pytest.raises(z.CorruptLengthError) as caught:
        with z.TFRecordReader(path) as reader:
            for batch in reader.batches():
                got += batch
    assert caught.value.record_index == 1234 and got == records[:1234]


# ---- Writing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [z.NONE, z.GZIP])
def test_fixed_length_runs_are_framed_as_record_by_record(tmp_path, compression):
    """The one-length framing (one join, strided footers) gives the same bytes as framing each
    record by hand, for runs of one length, mixed lengths and a single record."""
    rng = random.Random(5)
    records = ([bytes(rng.getrandbits(8) for _ in range(74)) for _ in range(5000)]
               + [b"x" * rng.randrange(3) for _ in range(300)] + [b"last"])
    expected = b"".join(z._framing_header(len(record)) + record + struct.pack("<I", z.masked_crc32c(record))
                        for record in records)
    batched = write_records(tmp_path / "batched", records, compression=compression, buffer_size=4096)
    one_by_one = str(tmp_path / "one")
    with z.TFRecordWriter(one_by_one, compression=compression, buffer_size=4096) as writer:
        for record in records:
            writer.write(record)
    raw = open(batched, "rb").read()
    if compression == z.GZIP:
        raw = gzip.decompress(raw)
    assert raw == expected
    assert open(batched, "rb").read() == open(one_by_one, "rb").read()
    assert [record for batch in z.TFRecordReader(batched).batches() for record in batch] == records
