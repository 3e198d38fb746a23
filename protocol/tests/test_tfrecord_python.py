"""Tests for the TFRecord and tf.train.Example half of the Python step SDK (protocol/python/zenml_step.py).

Everything is checked against the files TensorFlow wrote in shared/testdata/tfrecord/ and their
description in vectors.json (see conftest.py for where they are found).
"""

import base64
import gzip
import hashlib
import json
import os
import random
import struct
import sys
import tracemalloc
import zlib

import pytest

PROTOCOL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(PROTOCOL_DIR, "python"))

import zenml_step as z  # noqa: E402
from zenml_step import Example, Feature  # noqa: E402

try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the system pip; seeded random tests stand in
    given = None

try:
    import crc32c as crc32c_package
except ImportError:  # pragma: no cover
    crc32c_package = None

COMPRESSIONS = [z.NONE, z.GZIP, z.ZLIB]
PLAIN_FILES = [("empty.tfrecord", z.NONE), ("raw.tfrecord", z.NONE), ("examples.tfrecord", z.NONE)]
ALL_FILES = PLAIN_FILES + [("examples.gz.tfrecord", z.GZIP), ("examples.zlib.tfrecord", z.ZLIB)]


# ---- helpers ------------------------------------------------------------------------------------


def crc32c_bitwise(data, crc=0):
    """CRC-32C one bit at a time: slow, obviously right, independent of both implementations."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def frame(record):
    """A record framed by hand from the format description, independent of the writer."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", z.mask_crc(crc32c_bitwise(length))) + record + struct.pack(
        "<I", z.mask_crc(crc32c_bitwise(record)))


def write_file(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def write_records(path, records, compression=None, **options):
    with z.TFRecordWriter(path, compression=compression, **options) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def read_until_error(path, **options):
    """(records read, the TFRecordError that stopped reading or None)."""
    records = []
    try:
        with z.TFRecordReader(path, **options) as reader:
            while True:
                record = reader.read_record()
                if record is None:
                    return records, None
                records.append(record)
    except z.TFRecordError as error:
        return records, error


def feature_from_vector(description):
    kind = description["kind"]
    if kind == "bytes_list":
        return Feature(kind, [base64.b64decode(value) for value in description["values_b64"]])
    if kind == "float_list":
        return Feature(kind, [struct.unpack(">f", bytes.fromhex(value))[0] for value in description["f32_hex"]])
    if kind == "int64_list":
        return Feature(kind, [int(value) for value in description["values"]])
    assert kind is None or kind == "none", kind
    return Feature()


def example_from_vector(record):
    return Example({key: feature_from_vector(value) for key, value in record["features"].items()})


def canonical_line(example):
    """vectors.json's canonical_line of a decoded example."""
    line = {}
    for key, feature in example.items():
        if feature.kind == "int64_list":
            line[key] = {"int64": [str(value) for value in feature.values]}
        elif feature.kind == "float_list":
            line[key] = {"float": [struct.pack(">f", value).hex() for value in feature.values]}
        elif feature.kind == "bytes_list":
            line[key] = {"bytes": [base64.b64encode(value).decode() for value in feature.values]}
        else:
            line[key] = {"none": []}
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def raw_sha256(records):
    digest = hashlib.sha256()
    for record in records:
        digest.update(struct.pack("<Q", len(record)) + record)
    return digest.hexdigest()


def length_delimited(field, contents):
    return bytes([field << 3 | 2]) + z._varint(len(contents)) + contents


# ---- CRC32C -------------------------------------------------------------------------------------


def test_crc32c_check_value(tfrecord_vectors):
    check = tfrecord_vectors.document["format"]["crc32c_check_value"]
    expected = int(check["crc32c"], 16)
    data = check["input_ascii"].encode()
    assert z.crc32c(data) == expected == 0xE3069283
    assert z.crc32c_python(data) == expected
    assert crc32c_bitwise(data) == expected
    assert z.crc32c(b"") == z.crc32c_python(b"") == 0


def test_masked_crcs_match_every_record_header(tfrecord_vectors):
    for name in ("raw.tfrecord", "examples.tfrecord"):
        for record, data in zip(tfrecord_vectors.records(name), tfrecord_vectors.record_bytes(name)):
            length = struct.pack("<Q", len(data))
            assert z.masked_crc32c(length) == record["masked_crc_length"], (name, record["index"])
            assert z.masked_crc32c(data) == record["masked_crc_data"], (name, record["index"])
            assert z.mask_crc(z.crc32c_python(data)) == record["masked_crc_data"]
            assert z.unmask_crc(record["masked_crc_data"]) == z.crc32c(data)


def test_both_crc_implementations_agree_on_random_buffers():
    rng = random.Random(20261123)
    blob = bytes(rng.getrandbits(8) for _ in range(4096 + 64))
    lengths = list(range(0, 40)) + [63, 64, 65, 255, 256, 257, 1000, 4095, 4096]
    for length in lengths:
        for offset in (0, 1, 3, 7):  # every alignment of the 8-byte loop
            data = blob[offset:offset + length]
            expected = crc32c_bitwise(data) if length <= 1000 else None
            python = z.crc32c_python(data)
            assert python == z.crc32c(data), (length, offset)
            assert python == z.crc32c_python(memoryview(blob)[offset:offset + length])
            if expected is not None:
                assert python == expected, (length, offset)
            if crc32c_package is not None:
                assert python == crc32c_package.crc32c(data), (length, offset)


def test_crc_extends_like_a_concatenation():
    rng = random.Random(7)
    for _ in range(50):
        a = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 50)))
        b = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 50)))
        assert z.crc32c(b, z.crc32c(a)) == z.crc32c(a + b)
        assert z.crc32c_python(b, z.crc32c_python(a)) == z.crc32c_python(a + b)
        assert z.unmask_crc(z.mask_crc(z.crc32c(a))) == z.crc32c(a)


def test_the_active_implementation_is_reported():
    if crc32c_package is not None:
        assert z.CRC32C_IMPLEMENTATION.startswith("crc32c package")
    else:
        assert z.CRC32C_IMPLEMENTATION.startswith("pure Python")


@pytest.fixture
def pure_python_crc(monkeypatch):
    """Makes the whole module use the pure-Python CRC, as on a machine without the crc32c package."""
    monkeypatch.setattr(z, "_crc32c_function", z.crc32c_python)
    monkeypatch.setattr(z, "_HEADER_FOR_LENGTH", {})
    monkeypatch.setattr(z, "_LENGTH_FOR_VALID_HEADER", {})


def test_reading_and_writing_work_on_the_pure_python_crc(tfrecord_vectors, pure_python_crc, tmp_path):
    assert list(z.read_records(tfrecord_vectors.path("examples.gz.tfrecord"))) == \
        tfrecord_vectors.record_bytes("examples.tfrecord")
    records, error = read_until_error(tfrecord_vectors.path("corrupt.tfrecord"))
    assert len(records) == 7 and isinstance(error, z.CorruptDataError)
    path = write_records(tmp_path / "a.tfrecord", tfrecord_vectors.record_bytes("raw.tfrecord"))
    assert open(path, "rb").read() == tfrecord_vectors.bytes("raw.tfrecord")


# ---- Reading the vectors ------------------------------------------------------------------------


@pytest.mark.parametrize("name,compression", ALL_FILES)
def test_every_vector_file_is_read_exactly(tfrecord_vectors, name, compression):
    described = tfrecord_vectors.files[name]
    assert described["compression"] == compression
    expected = tfrecord_vectors.record_bytes(name)
    assert len(expected) == described["record_count"]
    for requested in (None, compression):
        with z.TFRecordReader(tfrecord_vectors.path(name), compression=requested) as reader:
            assert reader.compression == compression
            records = list(reader)
            assert records == expected
            assert reader.record_index == len(expected)
            assert reader.read_record() is None, "the end stays the end"
            assert reader.read_record() is None
        assert raw_sha256(records) == described["raw_sha256"]


def test_the_zero_byte_record_and_record_sizes(tfrecord_vectors):
    records = list(z.read_records(tfrecord_vectors.path("raw.tfrecord")))
    assert records[0] == b""
    assert [len(record) for record in records] == [0, 1, 14, 128, 300]
    for record, described in zip(records, tfrecord_vectors.records("raw.tfrecord")):
        assert hashlib.sha256(record).hexdigest() == described["data_sha256"]


def test_iterating_and_read_record_can_be_mixed(tfrecord_vectors):
    expected = tfrecord_vectors.record_bytes("examples.tfrecord")
    with z.TFRecordReader(tfrecord_vectors.path("examples.tfrecord"), buffer_size=300) as reader:
        records = []
        iterator = iter(reader)
        for index in range(len(expected)):
            records.append(next(iterator) if index % 3 else reader.read_record())
            assert reader.record_index == index + 1
        assert records == expected
        assert list(iterator) == [] and reader.read_record() is None


def test_the_empty_file_has_no_records(tfrecord_vectors):
    with z.TFRecordReader(tfrecord_vectors.path("empty.tfrecord")) as reader:
        assert reader.compression == z.NONE
        assert reader.read_record() is None
        assert list(reader) == []
        assert reader.record_index == 0


def test_the_reader_checks_every_record_header_against_the_vectors(tfrecord_vectors):
    data = tfrecord_vectors.bytes("examples.tfrecord")
    for record in tfrecord_vectors.records("examples.tfrecord"):
        offset = record["offset"]
        length, masked_length = struct.unpack_from("<QI", data, offset)
        assert length == record["length"]
        assert masked_length == record["masked_crc_length"]
        assert struct.unpack_from("<I", data, offset + 12 + length)[0] == record["masked_crc_data"]


# ---- Examples -----------------------------------------------------------------------------------


def test_every_example_is_decoded_exactly(tfrecord_vectors):
    digest = hashlib.sha256()
    described = tfrecord_vectors.records("examples.tfrecord")
    for data, record in zip(tfrecord_vectors.record_bytes("examples.tfrecord"), described):
        example = Example.parse(data)
        assert example == example_from_vector(record), record["index"]
        line = canonical_line(example)
        assert line == record["canonical_line"], record["index"]
        digest.update(line.encode() + b"\n")
    assert digest.hexdigest() == tfrecord_vectors.files["examples.tfrecord"]["canonical_sha256"]


@pytest.mark.parametrize("name", ["examples.tfrecord", "examples.gz.tfrecord", "examples.zlib.tfrecord"])
def test_read_examples_decodes_every_file(tfrecord_vectors, name):
    expected = [example_from_vector(record) for record in tfrecord_vectors.records(name)]
    assert list(z.read_examples(tfrecord_vectors.path(name))) == expected
    with z.TFRecordReader(tfrecord_vectors.path(name)) as reader:
        assert list(reader.examples()) == expected
    dicts = list(z.read_examples(tfrecord_vectors.path(name), as_dict=True))
    assert dicts[1] == {"id": [1], "label": [b"dog"], "tags": [b"a"], "x": [1.5, -0.25, 0.125]}


def test_empty_lists_are_present_and_missing_features_absent(tfrecord_vectors):
    examples = list(z.read_examples(tfrecord_vectors.path("examples.tfrecord")))
    for index, example in enumerate(examples):
        assert ("label" in example) == (index not in (3, 8, 13, 18)), index
        assert "tags" in example
    assert examples[0]["tags"] == Feature.bytes_list([])
    assert examples[0]["tags"] != Feature.unset()
    assert examples[0].get("nope") is None


def test_edge_values_survive_exactly(tfrecord_vectors):
    examples = list(z.read_examples(tfrecord_vectors.path("examples.tfrecord")))
    assert examples[16]["id"].values == [4294967296]
    assert examples[17]["id"].values == [-1]
    assert examples[18]["id"].values == [2 ** 63 - 1]
    assert examples[19]["id"].values == [-2 ** 63]
    bits = [struct.pack(">f", value).hex() for value in examples[5]["x"].values]
    assert bits == [struct.pack(">f", 0.1).hex(), "80000000", "7f7fffff"]
    assert examples[6]["x"].values[0] == 2 ** -149  # the smallest subnormal float32
    assert examples[3]["tags"].values == [b"x", b"", b"\x00\xff\xfebin"]
    assert [len(value) for value in examples[10]["tags"].values] == [3, 200]


def test_reencoding_gives_tensorflows_bytes(tfrecord_vectors):
    records = tfrecord_vectors.records("examples.tfrecord")
    for data, record in zip(tfrecord_vectors.record_bytes("examples.tfrecord"), records):
        assert Example.parse(data).serialize() == data, record["index"]
        assert example_from_vector(record).serialize() == data, record["index"]
        # The features in another order encode the same (TensorFlow sorts map keys).
        shuffled = Example(dict(reversed(list(example_from_vector(record).items()))))
        assert shuffled.SerializeToString() == data


def test_encoding_sorts_keys_by_utf8_bytes():
    example = Example({"\U0001F600": Feature(), "a": Feature(), "\u00e9": Feature(), "Z": Feature()})
    expected = b""
    for key in (b"Z", b"a", "\u00e9".encode(), "\U0001F600".encode()):
        entry = b"\x0a" + bytes([len(key)]) + key + b"\x12\x00"
        expected += b"\x0a" + bytes([len(entry)]) + entry
    assert example.serialize() == b"\x0a" + bytes([len(expected)]) + expected


def test_feature_with_no_kind_and_empty_example():
    data = bytes([0x0A, 0x07, 0x0A, 0x05, 0x0A, 0x01, 0x6B, 0x12, 0x00])
    example = Example.parse(data)
    assert example == Example({"k": Feature.unset()})
    assert example["k"].kind is None
    assert example.serialize() == data
    assert Example().serialize() == b"\x0a\x00"
    assert Example.parse(b"") == Example()
    assert Example.parse(b"\x0a\x00") == Example()
    assert Example({"f": Feature.float_list([])}).serialize() == bytes(
        [0x0A, 0x09, 0x0A, 0x07, 0x0A, 0x01, 0x66, 0x12, 0x02, 0x12, 0x00])
    assert Example({"i": Feature.int64_list([])}).serialize()[-2:] == b"\x1a\x00"
    assert Example({"b": Feature.bytes_list([])}).serialize()[-2:] == b"\x0a\x00"
    assert Example.parse(bytearray(data)) == example  # any bytes-like input


UNKNOWN_FIELDS = bytes([
    0x28, 0x96, 0x01,  # field 5, varint 150
    0x31, 1, 2, 3, 4, 5, 6, 7, 8,  # field 6, fixed64
    0x3D, 1, 2, 3, 4,  # field 7, fixed32
    0x42, 0x02, 0xAA, 0xBB,  # field 8, length-delimited
    0x4B, 0x08, 0x01, 0x4C,  # field 9, a group holding field 1 = 1
])


def test_decodes_unpacked_lists_and_skips_unknown_fields():
    floats = bytes([0x0D, 0x00, 0x00, 0x80, 0x3F]) + UNKNOWN_FIELDS + bytes([0x0D, 0x00, 0x00, 0x00, 0xC0])
    int64s = bytes([0x08, 0x05]) + UNKNOWN_FIELDS + bytes([0x08] + [0xFF] * 9 + [0x01])
    more_bytes = length_delimited(1, b"p") + UNKNOWN_FIELDS + length_delimited(1, b"q")

    def entry(key, feature):
        return length_delimited(1, length_delimited(1, key) + UNKNOWN_FIELDS + length_delimited(2, feature))

    features = (entry(b"x", length_delimited(2, floats) + UNKNOWN_FIELDS) + entry(b"id", length_delimited(3, int64s))
                + entry(b"s", length_delimited(1, more_bytes)))
    data = UNKNOWN_FIELDS + length_delimited(1, features) + UNKNOWN_FIELDS
    example = Example.parse(data)
    assert example == Example({"x": Feature.float_list([1, -2]), "id": Feature.int64_list([5, -1]),
                               "s": Feature.bytes_list([b"p", b"q"])})
    assert Example.parse(example.serialize()) == example
    # Packed and unpacked mixed in one list, and a long packed list.
    mixed = length_delimited(1, struct.pack("<2f", 1.0, 2.0)) + bytes([0x0D]) + struct.pack("<f", 3.0)
    assert Example.parse(length_delimited(1, entry(b"m", length_delimited(2, mixed))))["m"].values == [1, 2, 3]
    long_list = Feature.float_list([float(i) for i in range(1000)])
    assert Example.parse(Example({"l": long_list}).serialize())["l"] == long_list


def test_a_non_minimal_tag_still_counts_as_its_field():
    # Tag 0x0a written as the two-byte varint 8a 00: still Example.features.
    data = bytes([0x8A, 0x00, 0x07, 0x0A, 0x05, 0x0A, 0x01, 0x6B, 0x12, 0x00])
    assert Example.parse(data) == Example({"k": Feature()})


def test_merges_repeated_fields_as_protobuf_does():
    def entry(key, feature):
        return bytes([0x0A, 5 + len(feature), 0x0A, 0x01, key, 0x12, len(feature)]) + feature

    packed_ints = bytes([0x1A, 0x03, 0x0A, 0x01, 0x07])  # int64_list { value: [7] }
    more_ints = bytes([0x1A, 0x03, 0x0A, 0x01, 0x08])  # int64_list { value: [8] }
    bytes_list = bytes([0x0A, 0x03, 0x0A, 0x01, 0x62])  # bytes_list { value: ["b"] }
    first = entry(0x61, packed_ints + more_ints) + entry(0x62, packed_ints) + entry(0x63, packed_ints + bytes_list)
    second = entry(0x62, more_ints)
    data = bytes([0x0A, len(first)]) + first + bytes([0x0A, len(second)]) + second
    example = Example.parse(data)
    assert example["a"] == Feature.int64_list([7, 8]), "the same kind twice appends"
    assert example["b"] == Feature.int64_list([8]), "a later map entry replaces an earlier one"
    assert example["c"] == Feature.bytes_list([b"b"]), "another kind replaces the first"


@pytest.mark.parametrize("data,offset,reason", [
    ([0x0A], 1, "ends inside a varint"),
    ([0x0A, 0x05, 0x0A], 1, "runs past the end"),
    ([0x0A] + [0x80] * 10 + [0x01], 1, "longer than 10 bytes"),
    ([0x0A, 0x09, 0x0A, 0x07, 0x0A, 0x01, 0x78, 0x12, 0x02, 0x12, 0x01], 10, "runs past the end"),
    ([0x0A, 0x0C, 0x0A, 0x0A, 0x0A, 0x01, 0x78, 0x12, 0x05, 0x12, 0x03, 0x0A, 0x01, 0x00], 13, "not a multiple of 4"),
    ([0x0A, 0x07, 0x0A, 0x05, 0x0A, 0x01, 0xFF, 0x12, 0x00], 6, "not valid UTF-8"),
    ([0x0C], 1, "without its start"),
    ([0x00], 0, "invalid field tag"),
    ([0x0F], 0, "invalid field tag"),
    ([0x0B, 0x08, 0x01], 3, "ends inside group 1"),
    ([0x0B, 0x14], 2, "closed as group 2"),
    ([0x09, 0x01, 0x02], 1, "inside an 8-byte field"),
    ([0x0D, 0x01], 1, "inside a 4-byte field"),
])
def test_malformed_records_are_rejected_with_their_offset(data, offset, reason):
    with pytest.raises(z.ExampleDecodeError) as caught:
        Example.parse(bytes(data))
    assert caught.value.offset == offset, str(caught.value)
    assert reason in caught.value.reason
    assert "byte %d" % offset in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_record_that_is_not_an_example_names_its_file_and_index(tmp_path):
    path = write_records(tmp_path / "mixed.tfrecord", [Example({"a": [1]}).serialize(), b"\x0a\x05\x0a"])
    examples = z.read_examples(path)
    assert next(examples) == Example({"a": Feature.int64_list([1])})
    with pytest.raises(z.MalformedExampleError) as caught:
        next(examples)
    assert caught.value.path == path and caught.value.record_index == 1
    assert "record 1 is not a tf.train.Example" in str(caught.value)
    assert caught.value.offset == 1


def test_float_equality_is_bitwise_and_floats_are_float32():
    assert Feature.float_list([0.0]) != Feature.float_list([-0.0])
    assert Feature.float_list([float("nan")]) == Feature.float_list([float("nan")])
    assert Feature.float_list([0.1]) == Example.parse(Example({"x": [0.1]}).serialize())["x"]
    assert Example.parse(Example({"x": [0.1]}).serialize())["x"].values == [struct.unpack("<f", struct.pack("<f", 0.1))[0]]
    infinite = Example.parse(Example({"x": [float("inf"), float("-inf")]}).serialize())["x"].values
    assert infinite == [float("inf"), float("-inf")]


def test_values_that_do_not_fit_are_refused_with_the_feature_name():
    with pytest.raises(ValueError, match="'big'"):
        Example({"big": Feature("float_list", [1e40])}).serialize()
    with pytest.raises(ValueError, match="int64"):
        Feature.int64_list([2 ** 63])
    with pytest.raises(ValueError, match="'huge'"):
        Example({"huge": Feature("int64_list", [-2 ** 63 - 1])}).serialize()
    with pytest.raises(TypeError):
        Feature.int64_list([1.5])
    with pytest.raises(TypeError):
        Feature.bytes_list([3])
    with pytest.raises(ValueError):
        Feature("strings", [])


def test_from_dict_infers_kinds_and_to_dict_gives_lists():
    example = Example.from_dict({"id": 7, "x": [0.5, 1], "label": "cat", "raw": [b"\x00", "\u00e9"],
                                 "flags": [True, False], "empty": Feature.float_list([])})
    assert example["id"] == Feature.int64_list([7])
    assert example["x"] == Feature.float_list([0.5, 1.0])
    assert example["label"] == Feature.bytes_list([b"cat"])
    assert example["raw"] == Feature.bytes_list([b"\x00", "\u00e9".encode()])
    assert example["flags"] == Feature.int64_list([1, 0])
    assert example["empty"] == Feature.float_list([])
    assert example.to_dict() == {"id": [7], "x": [0.5, 1.0], "label": [b"cat"], "raw": [b"\x00", b"\xc3\xa9"],
                                 "flags": [1, 0], "empty": []}
    round_tripped = Example.parse(example.serialize()).to_dict()
    round_tripped["empty"] = Feature.float_list([])
    assert Example.from_dict(round_tripped) == example
    example["extra"] = [1, 2]
    assert example["extra"] == Feature.int64_list([1, 2]) and len(example) == 7
    del example["extra"]
    assert "extra" not in example
    assert Example({"id": [1]}) == Example({"id": Feature.int64_list([1])})


@pytest.mark.parametrize("value,message", [
    ([], "empty list"),
    ([1, "a"], "mixes"),
    ([None], "mixes or holds unsupported"),
    (object(), "not a list"),
])
def test_from_dict_explains_what_it_cannot_infer(value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Example.from_dict({"f": value})


# ---- Writing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.tfrecord", "raw.tfrecord", "examples.tfrecord"])
def test_uncompressed_output_is_byte_identical_to_tensorflows(tfrecord_vectors, tmp_path, name):
    path = write_records(tmp_path / name, tfrecord_vectors.record_bytes(name))
    data = open(path, "rb").read()
    assert data == tfrecord_vectors.bytes(name)
    assert hashlib.sha256(data).hexdigest() == tfrecord_vectors.files[name]["sha256"]
    # The same bytes framed by hand, from the format description alone.
    assert data == b"".join(frame(record) for record in tfrecord_vectors.record_bytes(name))


def test_writing_examples_rebuilt_from_the_description_reproduces_tensorflows_file(tfrecord_vectors, tmp_path):
    path = tmp_path / "rebuilt.tfrecord"
    with z.TFRecordWriter(path) as writer:
        for record in tfrecord_vectors.records("examples.tfrecord"):
            writer.write(example_from_vector(record))
        assert writer.record_count == 20
    assert open(path, "rb").read() == tfrecord_vectors.bytes("examples.tfrecord")


@pytest.mark.parametrize("compression,name", [(z.GZIP, "examples.gz.tfrecord"), (z.ZLIB, "examples.zlib.tfrecord")])
def test_compressed_output_is_one_standard_stream(tfrecord_vectors, tmp_path, compression, name):
    records = tfrecord_vectors.record_bytes("examples.tfrecord")
    path = write_records(tmp_path / name, records, compression=compression, buffer_size=100)
    data = open(path, "rb").read()
    plain = tfrecord_vectors.bytes("examples.tfrecord")
    if compression == z.GZIP:
        assert gzip.decompress(data) == plain
        assert data[4:8] == b"\0\0\0\0", "no timestamp in the gzip header: the file is deterministic"
    else:
        assert zlib.decompress(data) == plain
    assert list(z.read_records(path)) == records
    # Streaming through a small buffer gives the same bytes as compressing the file in one go
    # with TensorFlow's settings (level 6, memLevel 9).
    one_go = zlib.compressobj(-1, zlib.DEFLATED, 31 if compression == z.GZIP else 15, 9)
    assert data == one_go.compress(plain) + one_go.flush()


@pytest.mark.parametrize("compression,name", [(z.GZIP, "examples.gz.tfrecord"), (z.ZLIB, "examples.zlib.tfrecord")])
def test_compressed_output_matches_tensorflows_file_with_the_same_zlib(tfrecord_vectors, tmp_path, compression, name):
    one_go = zlib.compressobj(-1, zlib.DEFLATED, 31 if compression == z.GZIP else 15, 9)
    if one_go.compress(tfrecord_vectors.bytes("examples.tfrecord")) + one_go.flush() != tfrecord_vectors.bytes(name):
        pytest.skip("this Python's zlib %s compresses differently from the one TensorFlow used"
                    % zlib.ZLIB_RUNTIME_VERSION)
    path = write_records(tmp_path / name, tfrecord_vectors.record_bytes("examples.tfrecord"), compression=compression)
    assert open(path, "rb").read() == tfrecord_vectors.bytes(name)


def test_compression_names_are_accepted_in_any_spelling_and_unknown_ones_refused(tmp_path):
    for spelling, expected in [(None, z.NONE), ("", z.NONE), ("none", z.NONE), ("gzip", z.GZIP), ("GZ", z.GZIP),
                               ("zlib", z.ZLIB)]:
        with z.TFRecordWriter(tmp_path / "c", compression=spelling) as writer:
            assert writer.compression == expected
    with pytest.raises(ValueError, match="GZIP"):
        z.TFRecordWriter(tmp_path / "c", compression="snappy")
    with pytest.raises(ValueError):
        z.TFRecordWriter(tmp_path / "c", compression="auto")


def test_concatenated_gzip_members_read_as_one_file(tfrecord_vectors, tmp_path):
    records = tfrecord_vectors.record_bytes("raw.tfrecord")
    first = write_records(tmp_path / "a.gz", records[:2], compression=z.GZIP)
    second = write_records(tmp_path / "b.gz", records[2:], compression=z.GZIP)
    path = write_file(tmp_path / "both.gz", open(first, "rb").read() + open(second, "rb").read())
    assert list(z.read_records(path)) == records


def test_garbage_after_the_compressed_stream_is_an_error(tfrecord_vectors, tmp_path):
    path = write_file(tmp_path / "tail.gz", tfrecord_vectors.bytes("examples.gz.tfrecord") + b"garbage!")
    records, error = read_until_error(path)
    assert records == tfrecord_vectors.record_bytes("examples.tfrecord")
    assert isinstance(error, z.CorruptCompressedStreamError) and error.record_index == 20


def test_flush_hands_records_to_the_file(tmp_path):
    for compression in COMPRESSIONS:
        path = tmp_path / ("flush" + compression)
        writer = z.TFRecordWriter(path, compression=compression)
        writer.write(b"one")
        writer.write(b"two")
        writer.flush()
        data = open(path, "rb").read()
        plain = data if compression == z.NONE else zlib.decompressobj(31 if compression == z.GZIP else 15).decompress(data)
        assert plain == frame(b"one") + frame(b"two"), compression
        writer.write(b"three")
        writer.close()
        assert list(z.read_records(path)) == [b"one", b"two", b"three"]


def test_closed_writer_refuses_writes_and_text_is_refused(tmp_path):
    writer = z.TFRecordWriter(tmp_path / "w.tfrecord")
    with pytest.raises(TypeError, match="encode"):
        writer.write("text")
    writer.write(bytearray(b"ok"))
    writer.write(memoryview(b"view"))
    writer.close()
    writer.close()  # a second close does nothing
    with pytest.raises(z.WriterClosedError, match="closed"):
        writer.write(b"more")
    with pytest.raises(z.WriterClosedError):
        writer.flush()
    assert list(z.read_records(tmp_path / "w.tfrecord")) == [b"ok", b"view"]


def test_a_writer_dropped_without_close_still_finishes_its_file(tmp_path):
    path = tmp_path / "dropped.tfrecord.gz"
    writer = z.TFRecordWriter(path, compression=z.GZIP)
    writer.write(b"kept")
    del writer
    assert list(z.read_records(path)) == [b"kept"]


def test_missing_and_unwritable_paths_raise_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        z.TFRecordReader(tmp_path / "nope.tfrecord")
    with pytest.raises(OSError):
        z.TFRecordWriter(tmp_path / "no" / "such" / "dir.tfrecord")


# ---- Damage -------------------------------------------------------------------------------------


def test_corrupt_file_reports_the_data_crc_error_at_the_right_record(tfrecord_vectors):
    described = tfrecord_vectors.files["corrupt.tfrecord"]
    path = tfrecord_vectors.path("corrupt.tfrecord")
    reader = z.TFRecordReader(path)
    records = []
    with pytest.raises(z.CorruptDataError) as caught:
        for record in reader:
            records.append(record)
    error = caught.value
    index = described["corrupt_record_index"]
    assert len(records) == described["valid_records_before_error"] == index == 7
    assert records == tfrecord_vectors.record_bytes("examples.tfrecord")[:index]
    assert (error.path, error.record_index) == (path, index)
    assert error.offset == described["corrupt_record_offset"] + 12 == 625  # TensorFlow: "corrupted record at 625"
    assert error.length == described["corrupt_record_length"]
    assert isinstance(error, z.CorruptRecordError) and isinstance(error, z.TFRecordError)
    message = str(error)
    assert "record 7" in message and "CRC32C" in message and "the 7 records before it are intact" in message
    # Never a silent skip: the reader keeps failing.
    for _ in range(2):
        with pytest.raises(z.CorruptDataError) as again:
            reader.read_record()
        assert again.value is error


def test_corrupt_length_is_reported_at_the_right_record(tfrecord_vectors, tmp_path):
    record = tfrecord_vectors.records("examples.tfrecord")[3]
    data = bytearray(tfrecord_vectors.bytes("examples.tfrecord"))
    data[record["offset"] + 1] ^= 0x04
    path = write_file(tmp_path / "bad-length.tfrecord", bytes(data))
    records, error = read_until_error(path)
    assert len(records) == 3
    assert isinstance(error, z.CorruptLengthError)
    assert (error.path, error.record_index, error.offset) == (path, 3, record["offset"])
    assert "length header of record 3" in str(error) and "compression" in str(error)


def small_file_records():
    return [b"", b"a", b"hello tfrecord", bytes(range(40))]


def test_a_corrupt_byte_anywhere_in_a_plain_file_is_detected(tmp_path):
    records = small_file_records()
    data = b"".join(frame(record) for record in records)
    starts = []
    offset = 0
    for record in records:
        starts.append(offset)
        offset += 16 + len(record)
    path = str(tmp_path / "flipped.tfrecord")
    for position in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[position] ^= flip
            write_file(path, bytes(damaged))
            read, error = read_until_error(path, compression=z.NONE)
            index = max(i for i, start in enumerate(starts) if start <= position)
            assert error is not None, "flip %#x at byte %d went unnoticed" % (flip, position)
            assert read == records[:index], (position, flip)
            assert error.record_index == index, (position, flip, error)
            in_header = position - starts[index] < 12
            expected = (z.CorruptLengthError, z.RecordTooLargeError, z.TruncatedRecordError) if in_header \
                else (z.CorruptDataError,)
            assert isinstance(error, expected), (position, flip, error)


def test_a_corrupt_byte_anywhere_in_a_compressed_file_never_changes_the_records(tmp_path):
    records = small_file_records()
    for compression in (z.GZIP, z.ZLIB):
        clean = write_records(tmp_path / "clean", records, compression=compression)
        data = open(clean, "rb").read()
        path = str(tmp_path / "flipped")
        noticed = 0
        for position in range(len(data)):
            damaged = bytearray(data)
            damaged[position] ^= 0x01
            write_file(path, bytes(damaged))
            read, error = read_until_error(path, compression=compression)
            # Some header bytes (gzip's flags, time, OS) are not checked by anyone; then the
            # records must come back whole. Otherwise an error, after intact records only.
            assert read == records[:len(read)], (compression, position)
            if error is None:
                assert read == records, (compression, position)
            else:
                noticed += 1
        assert noticed >= len(data) - 10, compression


@pytest.mark.parametrize("index", [0, 7, 19])
def test_truncated_files_report_the_cut_record(tfrecord_vectors, tmp_path, index):
    data = tfrecord_vectors.bytes("examples.tfrecord")
    record = tfrecord_vectors.records("examples.tfrecord")[index]
    start, length = record["offset"], record["length"]
    full = 12 + length + 4
    for kept in list(range(1, 12)) + [12, 12 + length // 2, 12 + length, 12 + length + 3]:
        path = write_file(tmp_path / ("cut-%d-%d.tfrecord" % (index, kept)), data[:start + kept])
        read, error = read_until_error(path)
        assert len(read) == index, kept
        assert isinstance(error, z.TruncatedRecordError), (kept, error)
        assert (error.path, error.record_index, error.offset) == (path, index, start)
        assert error.expected_bytes == (12 if kept < 12 else full), kept
        assert error.available_bytes == kept
        assert "record %d" % index in str(error) and "cut short" in str(error)
    # A cut exactly between records is a shorter, valid file: the format cannot tell.
    path = write_file(tmp_path / "clean-cut.tfrecord", data[:start])
    assert len(list(z.read_records(path))) == index


def test_every_truncation_of_a_compressed_file_is_reported_not_shortened(tfrecord_vectors, tmp_path):
    expected = tfrecord_vectors.record_bytes("examples.tfrecord")
    for name, compression in (("examples.gz.tfrecord", z.GZIP), ("examples.zlib.tfrecord", z.ZLIB)):
        data = tfrecord_vectors.bytes(name)
        path = str(tmp_path / name)
        for kept in range(0, len(data)):
            write_file(path, data[:kept])
            read, error = read_until_error(path, compression=compression)
            assert read == expected[:len(read)], (name, kept)
            assert isinstance(error, (z.CorruptCompressedStreamError, z.TruncatedRecordError)), (name, kept, error)
            assert error.record_index == len(read)
            if isinstance(error, z.CorruptCompressedStreamError):
                assert error.compression == compression


def test_wrong_explicit_compression_gives_an_actionable_error(tfrecord_vectors):
    gzip_path = tfrecord_vectors.path("examples.gz.tfrecord")
    _, as_plain = read_until_error(gzip_path, compression=z.NONE)
    assert isinstance(as_plain, z.CorruptLengthError) and (as_plain.record_index, as_plain.offset) == (0, 0)
    assert "compression" in str(as_plain)
    plain_path = tfrecord_vectors.path("examples.tfrecord")
    _, as_gzip = read_until_error(plain_path, compression=z.GZIP)
    assert isinstance(as_gzip, z.CorruptCompressedStreamError)
    assert (as_gzip.path, as_gzip.compression, as_gzip.record_index) == (plain_path, z.GZIP, 0)


@pytest.mark.parametrize("length", [376, 35615, 0x9C78])
def test_detection_prefers_a_valid_plain_header_over_lookalike_magic(tmp_path, length):
    # A first record of 376 bytes starts 78 01 (a valid zlib header); 35615 bytes start 1f 8b (gzip's magic).
    records = [bytes([7]) * length, b"tail"]
    path = write_records(tmp_path / "lookalike.tfrecord", records)
    with z.TFRecordReader(path) as reader:
        assert reader.compression == z.NONE
        assert list(reader) == records
    assert z.detect_compression(open(path, "rb").read(12)) == z.NONE
    assert z.detect_compression(b"\x1f\x8b") == z.GZIP
    assert z.detect_compression(b"\x78\x9c") == z.ZLIB
    assert z.detect_compression(b"") == z.NONE


def test_lengths_beyond_the_limit_are_rejected_before_allocating(tmp_path):
    length = struct.pack("<Q", 1 << 40)
    huge = write_file(tmp_path / "huge.tfrecord", length + struct.pack("<I", z.masked_crc32c(length)))
    _, error = read_until_error(huge)
    assert isinstance(error, z.RecordTooLargeError)
    assert (error.record_index, error.offset, error.length, error.limit) == (0, 0, 1 << 40, 1 << 30)
    assert "max_record_length" in str(error)
    path = write_records(tmp_path / "limit.tfrecord", [bytes(10), bytes(100), bytes(101)])
    records, limited = read_until_error(path, max_record_length=100)
    assert [len(record) for record in records] == [10, 100]
    assert isinstance(limited, z.RecordTooLargeError)
    assert (limited.record_index, limited.offset, limited.length) == (2, 2 * 16 + 110, 101)


# ---- Round trips --------------------------------------------------------------------------------


def round_trip_records(tmp_path, records, compression, buffer_size):
    path = write_records(tmp_path / "round.tfrecord", records, compression=compression, buffer_size=buffer_size)
    with z.TFRecordReader(path, buffer_size=buffer_size) as reader:
        assert reader.compression == compression
        assert list(reader) == records


def round_trip_example(features):
    example = Example(features)
    data = example.serialize()
    decoded = Example.parse(data)
    assert decoded == example
    assert decoded.serialize() == data
    return data


if given is not None:
    float32s = st.floats(width=32, allow_nan=False)
    int64s = st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1)
    features = st.one_of(
        st.lists(st.binary(max_size=40), max_size=5).map(Feature.bytes_list),
        st.lists(float32s, max_size=5).map(Feature.float_list),
        st.lists(int64s, max_size=5).map(Feature.int64_list),
        st.just(Feature.unset()),
    )
    examples = st.dictionaries(st.text(max_size=8), features, max_size=6)

    @settings(max_examples=60, deadline=None)
    @given(records=st.lists(st.binary(max_size=300), max_size=30), compression=st.sampled_from(COMPRESSIONS),
           buffer_size=st.sampled_from([64, 100, 4096, z.DEFAULT_BUFFER_SIZE]))
    def test_random_records_round_trip(tmp_path_factory, records, compression, buffer_size):
        round_trip_records(tmp_path_factory.mktemp("hypothesis"), records, compression, buffer_size)

    @settings(max_examples=200, deadline=None)
    @given(features=examples)
    def test_random_examples_round_trip(features):
        round_trip_example(features)

    @settings(max_examples=300, deadline=None)
    @given(features=examples, damage=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(1, 255)), max_size=3),
           cut=st.integers(0, 10 ** 6))
    def test_the_fast_decoder_agrees_with_the_general_one(features, damage, cut):
        check_fast_decoder(Example(features).serialize(), damage, cut)

    @settings(max_examples=30, deadline=None)
    @given(rows=st.lists(examples, max_size=12), shards=st.integers(1, 4), compression=st.sampled_from(COMPRESSIONS))
    def test_random_examples_round_trip_through_sharded_artifacts(tmp_path_factory, rows, shards, compression):
        directory = str(tmp_path_factory.mktemp("artifact"))
        written = [Example(row) for row in rows]
        assert z.write_examples(directory, written, shards=shards, compression=compression) == len(written)
        # Record i went to shard i % shards; reading goes shard by shard.
        expected = [example for shard in range(shards) for example in written[shard::shards]]
        assert list(z.read_examples(directory)) == expected
else:  # pragma: no cover - without hypothesis: the same properties on seeded random data
    def random_feature(rng):
        kind = rng.randrange(4)
        count = rng.randrange(6)
        if kind == 0:
            return Feature.bytes_list(bytes(rng.getrandbits(8) for _ in range(rng.randrange(40))) for _ in range(count))
        if kind == 1:
            return Feature.float_list(struct.unpack("<f", struct.pack("<I", rng.getrandbits(32) & 0x7F7FFFFF))[0]
                                      * rng.choice((1, -1)) for _ in range(count))
        if kind == 2:
            return Feature.int64_list(rng.randrange(-2 ** 63, 2 ** 63) for _ in range(count))
        return Feature.unset()

    def random_example(rng):
        return {"".join(rng.choice("ab\u00e9\U0001F600_") for _ in range(rng.randrange(8))): random_feature(rng)
                for _ in range(rng.randrange(7))}

    def test_random_records_round_trip(tmp_path):
        rng = random.Random(1)
        for _ in range(60):
            records = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(300))) for _ in range(rng.randrange(30))]
            round_trip_records(tmp_path, records, rng.choice(COMPRESSIONS), rng.choice([64, 100, 4096]))

    def test_random_examples_round_trip():
        rng = random.Random(2)
        for _ in range(300):
            round_trip_example(random_example(rng))

    def test_the_fast_decoder_agrees_with_the_general_one():
        rng = random.Random(5)
        for _ in range(500):
            damage = [(rng.randrange(10 ** 6), rng.randrange(1, 256)) for _ in range(rng.randrange(4))]
            check_fast_decoder(Example(random_example(rng)).serialize(), damage, rng.randrange(10 ** 6))

    def test_random_examples_round_trip_through_sharded_artifacts(tmp_path):
        rng = random.Random(3)
        for attempt in range(30):
            directory = str(tmp_path / str(attempt))
            shards = rng.randrange(1, 5)
            written = [Example(random_example(rng)) for _ in range(rng.randrange(12))]
            z.write_examples(directory, written, shards=shards, compression=rng.choice(COMPRESSIONS))
            expected = [example for shard in range(shards) for example in written[shard::shards]]
            assert list(z.read_examples(directory)) == expected


def check_fast_decoder(data, damage, cut):
    """The fast path for small canonical records either declines (None) or agrees exactly with the
    general decoder, on intact and on damaged bytes."""
    variants = [data]
    if data:
        damaged = bytearray(data)
        for position, flip in damage:
            damaged[position % len(damaged)] ^= flip
        variants += [bytes(damaged), data[:cut % len(data)]]
    for variant in variants:
        try:
            fast = z._parse_canonical(variant)
        except (IndexError, UnicodeDecodeError, struct.error, z.ExampleDecodeError):
            fast = None
        try:
            general = z._parse_example_general(variant)
        except z.ExampleDecodeError:
            assert fast is None, variant.hex()
            continue
        if fast is not None:
            assert fast == general, variant.hex()
        assert Example.parse(variant).features == general
        assert Example.parse(variant).features == general  # again: through its template, if it has one
    if data:
        assert z._parse_canonical(data) is not None, "canonical records (any size) take the fast path"


def test_big_records_and_small_buffers_round_trip(tmp_path):
    rng = random.Random(4)
    records = [bytes(rng.getrandbits(8) for _ in range(size)) for size in (0, 70000, 5, 300000, 1)]
    for compression in COMPRESSIONS:
        for buffer_size in (64, 65536):
            round_trip_records(tmp_path, records, compression, buffer_size)


def test_reading_a_large_file_takes_flat_memory(tmp_path):
    record = Example({"x": [0.5, 1.5], "id": [7], "key": [bytes(range(256)) * 4]}).serialize()
    for compression in (z.NONE, z.GZIP):
        path = tmp_path / ("large" + compression)
        with z.TFRecordWriter(path, compression=compression) as writer:
            for _ in range(16000):
                writer.write(record)
        assert os.path.getsize(path) > (16 << 20) or compression != z.NONE
        tracemalloc.start()
        try:
            count = sum(1 for _ in z.read_records(path))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert count == 16000
        assert peak < 4 * z.DEFAULT_BUFFER_SIZE + (1 << 20), "peak %d bytes while reading %s" % (peak, compression)


# ---- Sharded artifacts --------------------------------------------------------------------------


def test_shard_file_names():
    assert z.shard_file_name(0, 1) == "data-00000-of-00001.tfrecord"
    assert z.shard_file_name(2, 4, compression="GZIP") == "data-00002-of-00004.tfrecord.gz"
    assert z.shard_file_name(3, 123456, prefix="train", compression=z.ZLIB) == "train-00003-of-123456.tfrecord.zlib"
    for bad in ((4, 4), (-1, 4), (0, 0)):
        with pytest.raises(ValueError):
            z.shard_file_name(*bad)
    assert z.parse_shard_file_name("data-00002-of-00004.tfrecord.gz") == (2, 4)
    assert z.parse_shard_file_name("data-123456-of-999999.tfrecord") == (123456, 999999)
    for name in ("data-0002-of-00004.tfrecord", "data-00002-of-00000.tfrecord", "data-00002-of-00004.tfrecord.bz2",
                 "data-00002-of-00004", "other-00000-of-00001.tfrecord", "data-x0000-of-00001.tfrecord",
                 "data-00000-of-00001-of-00001.tfrecord", "data-\u0660\u0660\u0660\u0660\u0660-of-00001.tfrecord"):
        assert z.parse_shard_file_name(name) is None, name
    assert z.parse_shard_file_name("train-00000-of-00001.tfrecord", prefix="train") == (0, 1)


def test_reads_every_shard_in_order(tmp_path):
    directory = tmp_path / "artifact"
    directory.mkdir()
    for index, compression in enumerate([z.GZIP, z.NONE, z.ZLIB]):
        name = z.shard_file_name(index, 3, compression=compression)
        write_records(directory / name, [("shard %d record %d" % (index, i)).encode() for i in range(index + 1)],
                      compression=compression)
    write_file(directory / "README.txt", b"not a shard")
    write_file(directory / "other-00000-of-00001.tfrecord", b"")
    assert [os.path.basename(p) for p in z.shard_paths(directory)] == [
        "data-00000-of-00003.tfrecord.gz", "data-00001-of-00003.tfrecord", "data-00002-of-00003.tfrecord.zlib"]
    assert list(z.read_records(directory)) == [b"shard 0 record 0", b"shard 1 record 0", b"shard 1 record 1",
                                               b"shard 2 record 0", b"shard 2 record 1", b"shard 2 record 2"]
    assert list(z.read_records(str(directory / "data-00001-of-00003.tfrecord"))) == [b"shard 1 record 0",
                                                                                     b"shard 1 record 1"]
    assert list(z.read_records(directory, prefix="other")) == []


def test_the_vectors_read_as_a_one_shard_artifact(tfrecord_vectors, tmp_path):
    directory = tmp_path / "one"
    directory.mkdir()
    write_file(directory / "data-00000-of-00001.tfrecord.gz", tfrecord_vectors.bytes("examples.gz.tfrecord"))
    assert list(z.read_examples(directory)) == [example_from_vector(r) for r in tfrecord_vectors.records(
        "examples.tfrecord")]


@pytest.mark.parametrize("names,error,message", [
    ([], z.NoShardsError, "holds no TFRecord shards"),
    (["data-00000-of-00002.tfrecord"], z.InconsistentShardsError, "1 of 2 shards are missing (index 1)"),
    (["data-00000-of-00002.tfrecord", "data-00001-of-00003.tfrecord"], z.InconsistentShardsError,
     "remove the stale ones"),
    (["data-00000-of-00001.tfrecord", "data-00000-of-00001.tfrecord.gz"], z.InconsistentShardsError,
     "shard 0 is there twice"),
    (["data-00002-of-00002.tfrecord"], z.InconsistentShardsError, "index beyond the shard count"),
    (["data-00000-of-00009.tfrecord"], z.InconsistentShardsError, "(index 1, 2, 3, 4, 5, ...)"),
])
def test_incomplete_or_inconsistent_shard_sets_are_rejected(tmp_path, names, error, message):
    for name in names:
        write_file(tmp_path / name, b"")
    with pytest.raises(error) as caught:
        z.shard_paths(tmp_path)
    assert message in str(caught.value)
    assert caught.value.path == str(tmp_path)
    with pytest.raises(error):
        z.read_examples(tmp_path)  # checked at once, before any reading


def test_errors_name_the_shard_and_the_record_within_it(tfrecord_vectors, tmp_path):
    write_records(tmp_path / "data-00000-of-00002.tfrecord", [b"fine"])
    bad = write_file(tmp_path / "data-00001-of-00002.tfrecord", tfrecord_vectors.bytes("corrupt.tfrecord"))
    records = []
    with pytest.raises(z.CorruptDataError) as caught:
        for record in z.read_records(tmp_path):
            records.append(record)
    assert len(records) == 1 + 7
    assert (caught.value.path, caught.value.record_index) == (bad, 7)


def test_example_writer_spreads_records_over_shards(tmp_path):
    directory = tmp_path / "out"
    with z.ExampleWriter(directory, shards=3, compression="GZIP") as writer:
        for i in range(10):
            writer.write({"id": i})
        writer.write(Example({"id": [10]}))
        writer.write(Example({"id": [11]}).serialize())
    assert writer.record_count == 12
    assert sorted(os.listdir(directory)) == ["data-0000%d-of-00003.tfrecord.gz" % i for i in range(3)]
    ids = [example["id"].values[0] for example in z.read_examples(directory)]
    assert ids == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]
    for shard, path in enumerate(writer.paths):
        assert [e["id"].values[0] for e in z.read_examples(path)] == list(range(shard, 12, 3))
    # More shards than records: the empty shards exist and read as empty.
    assert z.write_examples(tmp_path / "sparse", [{"a": 1}], shards=4) == 1
    assert len(os.listdir(tmp_path / "sparse")) == 4
    assert list(z.read_examples(tmp_path / "sparse", as_dict=True)) == [{"a": [1]}]
    with pytest.raises(ValueError):
        z.ExampleWriter(tmp_path / "zero", shards=0)


def test_example_writer_output_is_deterministic(tmp_path):
    rows = [{"id": i, "x": [i / 3.0], "label": "row %d" % i} for i in range(100)]
    for compression in COMPRESSIONS:
        z.write_examples(tmp_path / ("a" + compression), rows, shards=2, compression=compression)
        z.write_examples(tmp_path / ("b" + compression), rows, shards=2, compression=compression)
        for name in os.listdir(tmp_path / ("a" + compression)):
            assert open(tmp_path / ("a" + compression) / name, "rb").read() == \
                open(tmp_path / ("b" + compression) / name, "rb").read()


def test_a_step_can_copy_the_module_and_use_it_alone(tmp_path):
    """The module is one standard-library file: a bundle copies it and imports nothing else."""
    import shutil
    import subprocess

    shutil.copy(os.path.join(PROTOCOL_DIR, "python", "zenml_step.py"), tmp_path)
    script = (
        "import sys; sys.path.insert(0, '.'); sys.modules['crc32c'] = None\n"  # as without the crc32c package
        "import zenml_step as z\n"
        "assert z.CRC32C_IMPLEMENTATION.startswith('pure Python'), z.CRC32C_IMPLEMENTATION\n"
        "z.write_examples('out', [{'id': i, 'x': [i * 0.5]} for i in range(5)], shards=2, compression='GZIP')\n"
        "print(sorted(e['id'].values[0] for e in z.read_examples('out')))\n")
    result = subprocess.run([sys.executable, "-I", "-c", script], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "[0, 1, 2, 3, 4]"


def test_the_fast_decoder_takes_large_records_and_agrees_with_the_general_one():
    """Multi-byte lengths (records over 127 bytes and over 16 KiB, long names, long lists) take the
    fast path and decode exactly as the general decoder does, packed or not."""
    cases = [
        {"name": Feature.bytes_list([b"x" * 200]), "f": Feature.float_list([0.5, -1.25])},         # ~230 bytes
        {"big": Feature.bytes_list([b"y" * 20000, b"", b"z"])},                                   # > 16 KiB
        {"floats": Feature.float_list([float(i) / 7 for i in range(5000)])},                       # 20 KB packed
        {"ints": Feature.int64_list([-1, 0, 1, 127, 128, 2 ** 63 - 1, -2 ** 63] * 40)},            # negatives: 10 bytes
        {"small": Feature.int64_list(list(range(128)) * 3)},                                      # all one-byte varints
        {"k" * 300: Feature.int64_list([5]), "empty_f": Feature.float_list([]),
         "empty_i": Feature.int64_list([]), "empty_b": Feature.bytes_list([]), "unset": Feature.unset()},
        {"species": Feature.bytes_list([b"Adelie"]), "island": Feature.bytes_list([b"Torgersen"]),
         "bill_length_mm": Feature.float_list([39.1]), "bill_depth_mm": Feature.float_list([18.7]),
         "flipper_length_mm": Feature.float_list([181.0]), "body_mass_g": Feature.float_list([3750.0]),
         "sex": Feature.bytes_list([b"male"]), "year": Feature.int64_list([2007])},               # penguins, ~190 bytes
    ]
    for features in cases:
        data = Example(features).serialize()
        fast = z._parse_canonical(data)
        assert fast is not None, sorted(features)
        assert fast == z._parse_example_general(data) == features
        assert Example.parse(data).serialize() == data
        for cut in (1, len(data) // 2, len(data) - 1):
            check_fast_decoder(data, [(cut * 7919, 0x80)], cut)


def test_the_fast_decoder_declines_unpacked_lists_which_the_general_one_reads():
    # FloatList with two unpacked values (tag 0x0D each), Int64List with unpacked -1 (tag 0x08).
    floats = struct.pack("<f", 1.5) + struct.pack("<f", -2.0)
    float_list = b"\x0d" + floats[:4] + b"\x0d" + floats[4:]
    minus_one = b"\xff" * 9 + b"\x01"
    int_list = b"\x08" + minus_one + b"\x08\x02"

    def entry(key, tag, body):
        feature = bytes([tag, len(body)]) + body
        item = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(feature)]) + feature
        return b"\x0a" + bytes([len(item)]) + item

    content = entry(b"f", 0x12, float_list) + entry(b"i", 0x1A, int_list)
    data = b"\x0a" + bytes([len(content)]) + content
    assert z._parse_canonical(data) is None
    assert Example.parse(data) == Example({"f": Feature.float_list([1.5, -2.0]), "i": Feature.int64_list([-1, 2])})


def test_batched_reading_reports_damage_inside_a_run_at_the_right_record(tmp_path):
    """Runs of equal-length records are checked a batch at a time; damage in the middle of a run
    still yields exactly the intact records before it and names the damaged one."""
    records = [bytes([i % 251]) * 40 for i in range(3000)] + [b"x" * (i % 7) for i in range(500)]
    path = str(tmp_path / "run.tfrecord")
    with z.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    assert list(z.TFRecordReader(path)) == records
    data = open(path, "rb").read()
    for index in (0, 1, 17, 1234, 2999, 3001, 3499):
        offset = sum(len(record) + 16 for record in records[:index]) + 12 + len(records[index]) // 2
        if not records[index]:
            offset += 2  # an empty record: damage its data CRC instead
        damaged = bytearray(data)
        damaged[offset] ^= 0x40
        bad = str(tmp_path / ("bad%d.tfrecord" % index))
        open(bad, "wb").write(bytes(damaged))
        got = []
        with z.TFRecordReader(bad) as reader:
            with pytest.raises(z.CorruptDataError) as caught:
                for record in reader:
                    got.append(record)
                    assert reader.record_index == len(got)
        assert got == records[:index] and caught.value.record_index == index


def test_read_record_and_iteration_interleave(tmp_path):
    records = [b"%05d" % i for i in range(2000)]
    path = str(tmp_path / "mixed.tfrecord")
    with z.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    got = []
    with z.TFRecordReader(path) as reader:
        iterator = iter(reader)
        while True:
            record = next(iterator, None) if len(got) % 3 else reader.read_record()
            if record is None:
                break
            got.append(record)
            assert reader.record_index == len(got)
    assert got == records


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_write_records_writes_the_same_bytes_as_write(tmp_path, compression):
    rng = random.Random(9)
    records = [bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 74, 74, 74, 200, 70000))))
               for _ in range(400)]
    one, many = str(tmp_path / "one"), str(tmp_path / "many")
    with z.TFRecordWriter(one, compression=compression, buffer_size=1000) as writer:
        for record in records:
            writer.write(record)
    with z.TFRecordWriter(many, compression=compression, buffer_size=1000) as writer:
        writer.write_records(records[:150])
        writer.write_records(iter(records[150:]))
        assert writer.record_count == len(records)
    assert open(one, "rb").read() == open(many, "rb").read()
    assert list(z.TFRecordReader(many)) == records


def test_many_empty_records_keep_the_writer_buffer_bounded(tmp_path):
    with z.TFRecordWriter(str(tmp_path / "empty.tfrecord"), buffer_size=4096) as writer:
        for _ in range(10000):
            writer.write(b"")
            assert len(writer._pending) <= 4096 // 16
    assert sum(1 for _ in z.TFRecordReader(str(tmp_path / "empty.tfrecord"))) == 10000


def test_every_tensorflow_written_example_takes_the_fast_decoder(tfrecord_vectors):
    """TensorFlow's own bytes (one example is 280 bytes: two-byte lengths) decode on the fast path,
    exactly as the general decoder decodes them."""
    records = list(z.read_records(tfrecord_vectors.path("examples.tfrecord")))
    assert max(map(len, records)) >= 128
    for record in records:
        fast = z._parse_canonical(record)
        assert fast is not None and fast == z._parse_example_general(record)


def test_templates_never_confuse_layouts_of_the_same_length():
    """Records of one length but different layouts (names, kinds, list sizes, varint widths, value
    bytes that look like structure) each decode exactly, whichever record made the template."""
    rng = random.Random(11)
    layouts = [
        lambda: {"a": Feature.int64_list([rng.randrange(-300, 300) for _ in range(rng.randrange(4))]),
                 "b": Feature.bytes_list([bytes(rng.getrandbits(8) for _ in range(rng.randrange(3)))
                                          for _ in range(rng.randrange(3))])},
        lambda: {"a": Feature.float_list([rng.uniform(-1, 1) for _ in range(rng.randrange(3))]),
                 "c": Feature.int64_list([rng.randrange(2 ** 63) for _ in range(rng.randrange(2))])},
        lambda: {"b": Feature.bytes_list([b"\x0a\x02\x12\x00"[:rng.randrange(5)]]), "a": Feature.unset()},
        lambda: {"ab"[rng.randrange(2)]: Feature.float_list([]), "x": Feature.int64_list([rng.randrange(200)])},
    ]
    records = [Example(rng.choice(layouts)()).serialize() for _ in range(3000)]
    for data in records + records[::-1]:
        assert Example.parse(data).features == z._parse_example_general(data), data.hex()
    lengths = {}
    for data in records:
        lengths.setdefault(len(data), set()).add(data[:6])
    assert any(len(prefixes) > 1 for prefixes in lengths.values()), "same lengths, different layouts"


def test_template_decoding_of_damaged_int_lists_falls_back_to_the_general_decoder():
    good = Example({"i": Feature.int64_list([300, 5])}).serialize()
    assert Example.parse(good)["i"].values == [300, 5]
    damaged = bytearray(good)
    damaged[-1] |= 0x80  # the last varint (5) now runs past the end of the list
    damaged = bytes(damaged)
    with pytest.raises(z.ExampleDecodeError):
        z._parse_example_general(damaged)
    with pytest.raises(z.ExampleDecodeError):
        Example.parse(damaged)
