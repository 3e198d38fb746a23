"""TFRecord benchmark of the Python step SDK (protocol/python/zenml_step.py); see bench/tfrecord/README.md.

    python3 bench.py write DIR N   build and serialize N examples, write DIR/data.tfrecord and .gz
    python3 bench.py read DIR N    read both files (framing, both CRCs checked), then decode every example
    python3 bench.py crc           CRC-32C over 1 GiB (a 64 MiB buffer, 16 times) with crc32c()

Prints "python<TAB>metric<TAB>value" lines. Example i is the same as in the C and Swift runners.
"""

import os
import resource
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "protocol", "python"))

import zenml_step as z  # noqa: E402

GOLDEN = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
pack_payload = struct.Struct("<QQ").pack


_marks = [(0.0, 0.0), (0.0, 0.0)]


def now():
    """Wall-clock seconds; also remembers the process CPU time, so a rate reported right after the
    end of a timed interval is also reported per CPU second (`<metric>_cpu`)."""
    wall, cpu = time.perf_counter(), time.process_time()
    _marks[0], _marks[1] = _marks[1], (wall, cpu)
    return wall


def report(metric, value, per_cpu=True):
    print("python\t%s\t%s" % (metric, value), flush=True)
    (wall0, cpu0), (wall1, cpu1) = _marks
    if per_cpu and metric.endswith(("_rps", "_MBps", "_GBps")) and cpu1 > cpu0:
        # The same work per CPU second (all threads together): on a machine shared with other work
        # it moves much less than the wall-clock rate.
        print("python\t%s_cpu\t%s" % (metric, value * (wall1 - wall0) / (cpu1 - cpu0)), flush=True)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def example(i):
    return z.Example({
        "floats": z.Feature("float_list", [i * 0.5, -float(i) * 0.25]),  # -0.0 for i = 0, as in C and Swift
        "id": z.Feature("int64_list", [i]),
        "payload": z.Feature("bytes_list", [pack_payload(i, (i * GOLDEN) & MASK64)]),
    })


def bench_write(directory, count):
    start = now()
    records = [example(i).serialize() for i in range(count)]
    elapsed = now() - start
    size = sum(map(len, records))
    report("build_serialize_rps", count / elapsed)
    report("example_bytes", size / count)
    for name, compression, metric in (("data.tfrecord", z.NONE, "write_none"), ("data.tfrecord.gz", z.GZIP, "write_gzip")):
        start = now()
        with z.TFRecordWriter(os.path.join(directory, name), compression=compression) as writer:
            write = writer.write
            for record in records:
                write(record)
        elapsed = now() - start
        report(metric + "_rps", count / elapsed)
        report(metric + "_MBps", (size + 16 * count) / elapsed / 1e6)
    if hasattr(z.TFRecordWriter, "write_records"):
        # The same uncompressed file through write_records(), the SDK's call for many records.
        start = now()
        with z.TFRecordWriter(os.path.join(directory, "batch.tfrecord")) as writer:
            writer.write_records(records)
        elapsed = now() - start
        report("write_none_batch_rps", count / elapsed)
        report("write_none_batch_MBps", (size + 16 * count) / elapsed / 1e6)
        os.remove(os.path.join(directory, "batch.tfrecord"))
    report("write_peak_rss_MB", peak_rss_mb())


def bench_read(directory, count):
    for name, metric in (("data.tfrecord", "read_none"), ("data.tfrecord.gz", "read_gzip")):
        start = now()
        records = size = 0
        with z.TFRecordReader(os.path.join(directory, name)) as reader:
            for record in reader:
                records += 1
                size += len(record)
        elapsed = now() - start
        assert records == count, (name, records)
        report(metric + "_rps", records / elapsed)
        report(metric + "_MBps", (size + 16 * records) / elapsed / 1e6)
    if hasattr(z.TFRecordReader, "read_batch"):
        # The same uncompressed file through read_batch(), the SDK's call for many records.
        start = now()
        records = size = 0
        with z.TFRecordReader(os.path.join(directory, "data.tfrecord")) as reader:
            read_batch = reader.read_batch
            while True:
                batch = read_batch()
                if not batch:
                    break
                records += len(batch)
                size += sum(map(len, batch))
        elapsed = now() - start
        assert records == count, records
        report("read_none_batch_rps", records / elapsed)
        report("read_none_batch_MBps", (size + 16 * records) / elapsed / 1e6)
    if hasattr(z, "read_example_batches"):
        # Decoding into columns (one array per feature for a batch of records, as parse_example).
        start = now()
        records = total = 0
        for batch in z.read_example_batches(os.path.join(directory, "data.tfrecord")):
            total += sum(batch["id"].values)
            records += len(batch)
        elapsed = now() - start
        assert records == count and total == count * (count - 1) // 2
        report("decode_columns_rps", records / elapsed)
    start = now()
    records = total = 0
    for decoded in z.read_examples(os.path.join(directory, "data.tfrecord")):
        total += decoded["id"].values[0]
        records += 1
    elapsed = now() - start
    assert records == count and total == count * (count - 1) // 2
    report("decode_rps", records / elapsed)
    report("read_peak_rss_MB", peak_rss_mb())


def bench_crc():
    size = 64 << 20
    data = bytes((i * 131 + (i >> 9)) & 0xFF for i in range(1 << 16)) * (size >> 16)
    crc = z.crc32c(data)
    start = now()
    for _ in range(16):
        crc = z.crc32c(data, crc)
    elapsed = now() - start
    report("crc_GBps", size * 16 / elapsed / 1e9)
    # The pure-Python fallback, on 4 MiB (extrapolated: it runs at a few MB/s).
    sample = data[:4 << 20]
    start = now()
    z.crc32c_python(sample)
    report("crc_pure_python_MBps", len(sample) / (now() - start) / 1e6)
    print("python: CRC-32C %s" % z.CRC32C_IMPLEMENTATION, file=sys.stderr)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) == 3 and arguments[0] == "write":
        bench_write(arguments[1], int(arguments[2]))
    elif len(arguments) == 3 and arguments[0] == "read":
        bench_read(arguments[1], int(arguments[2]))
    elif arguments == ["crc"]:
        bench_crc()
    else:
        sys.exit("usage: bench.py write|read DIR N | crc")
