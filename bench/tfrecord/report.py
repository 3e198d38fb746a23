"""Turns the benchmark's "implementation<TAB>metric<TAB>value" lines into a Markdown table, with
TensorFlow's reference figures and the targets (bench/tfrecord/README.md).

    python3 report.py results.tsv
"""

import collections
import statistics
import sys

# TensorFlow 2.21 on this kind of machine (2 cores, shared; median of 3), from the issue.
TF_WRITE_RPS = 0.55e6  # pre-serialized records, uncompressed (50 MB/s)
TF_WRITE_GZIP_RPS = 0.30e6
TF_READ_RPS = 0.36e6  # TFRecordDataset at best (35 MB/s)
TF_PARSE_RPS = 0.20e6  # tf.io.parse_example
TF_BUILD_RPS = 27e3  # building tf.train.Example in Python
IMPLEMENTATIONS = [("swift", "Swift (ZenMLTFRecord)"), ("c", "C SDK"), ("python", "Python SDK")]


def load(path):
    values = collections.defaultdict(list)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                values[(parts[0], parts[1])].append(float(parts[2]))
    return {key: statistics.median(samples) for key, samples in values.items()}, \
        max((len(samples) for samples in values.values()), default=0)


def rate(value):
    return "%.2f M" % (value / 1e6) if value >= 1e6 else "%.0f k" % (value / 1e3)


def file_megabytes(example_bytes, records=1e6):
    return ((example_bytes or 74) + 16) * records / 1e6


def mark(ok):
    return " ✅" if ok else " ❌"


def table(medians, runs):
    def get(impl, metric):
        return medians.get((impl, metric))

    zlib_deflate = get("c", "zlib_deflate_MBps")
    rows = []

    def row(name, reference, target, cell):
        rows.append("| %s | %s | %s | %s |" % (name, reference, target, " | ".join(cell(impl) for impl, _ in IMPLEMENTATIONS)))

    def records_cell(metric, goal=None):
        def cell(impl):
            rps, mbps = get(impl, metric + "_rps"), get(impl, metric + "_MBps")
            if rps is None:
                return "–"
            text = "%s rec/s" % rate(rps) + (", %.0f MB/s" % mbps if mbps is not None else "")
            return text + (mark(rps >= goal) if goal else "")
        return cell

    def gzip_cell(metric, baseline):
        def cell(impl):
            rps, mbps = get(impl, metric + "_rps"), get(impl, metric + "_MBps")
            if rps is None or baseline is None:
                return "–"
            ratio = baseline / mbps
            return "%s rec/s, %.0f MB/s (%.2fx zlib's time)%s" % (rate(rps), mbps, ratio, mark(ratio <= 1.2))
        return cell

    row("Write pre-serialized records, uncompressed", "%s rec/s (50 MB/s)" % rate(TF_WRITE_RPS),
        "≥ 5x: %s rec/s" % rate(5 * TF_WRITE_RPS), records_cell("write_none", 5 * TF_WRITE_RPS))
    row("Write, uncompressed, batched call (Python `write_records`)", "%s rec/s" % rate(TF_WRITE_RPS),
        "≥ 5x: %s rec/s" % rate(5 * TF_WRITE_RPS), records_cell("write_none_batch", 5 * TF_WRITE_RPS))
    row("Write, GZIP (level 6)", "%s rec/s" % rate(TF_WRITE_GZIP_RPS),
        "≤ 1.2x zlib alone (%.0f MB/s)" % (zlib_deflate or 0), gzip_cell("write_gzip", zlib_deflate))
    row("Read, uncompressed (both CRCs checked)", "%s rec/s (35 MB/s)" % rate(TF_READ_RPS),
        "≥ 5x: %s rec/s" % rate(5 * TF_READ_RPS), records_cell("read_none", 5 * TF_READ_RPS))
    row("Read, uncompressed, a batch per call (Python `read_batch`)", "%s rec/s" % rate(TF_READ_RPS),
        "≥ 5x: %s rec/s" % rate(5 * TF_READ_RPS), records_cell("read_none_batch", 5 * TF_READ_RPS))
    row("Read, GZIP (both CRCs checked)", "≤ %s rec/s" % rate(TF_READ_RPS), "–", records_cell("read_gzip"))
    row("Read and decode to Examples", "parse_example: %s rec/s" % rate(TF_PARSE_RPS),
        "≥ 5x: %s rec/s" % rate(5 * TF_PARSE_RPS), records_cell("decode", 5 * TF_PARSE_RPS))
    row("Read and decode into columns (Python `read_example_batches`)", "parse_example: %s rec/s" % rate(TF_PARSE_RPS),
        "≥ 5x: %s rec/s" % rate(5 * TF_PARSE_RPS), records_cell("decode_columns", 5 * TF_PARSE_RPS))
    row("Build and serialize Examples", "Python: %s rec/s" % rate(TF_BUILD_RPS), "–", records_cell("build_serialize"))

    def crc_cell(impl):
        value = get(impl, "crc_GBps")
        if value is None:
            return "–"
        text = "%.1f GB/s%s" % (value, mark(value >= 8))
        fallback = get(impl, "crc_pure_python_MBps")
        return text + (" (pure-Python fallback: %.0f MB/s)" % fallback if fallback else "")

    row("CRC32C over 1 GiB", "Python `crc32c` package: 4–5.5 GB/s", "≥ 8 GB/s", crc_cell)

    def memory_cell(metric):
        def cell(impl):
            value = get(impl, metric)
            return "–" if value is None else "%.0f MB" % value
        return cell

    row("Peak RSS of the reading process (%.0f MB file)" % (file_megabytes(get("c", "example_bytes"), get("bench", "records") or 1e6)), "–",
        "flat (independent of file size)", memory_cell("read_peak_rss_MB"))
    row("Peak RSS of the writing process (holds all records)", "–", "–", memory_cell("write_peak_rss_MB"))
    header = ["| | TensorFlow 2.21 (reference) | target | %s |" % " | ".join(name for _, name in IMPLEMENTATIONS),
              "|---|---|---|" + "---|" * len(IMPLEMENTATIONS)]
    return "\n".join(header + rows)


def main():
    medians, runs = load(sys.argv[1])
    print(table(medians, runs))
    print()
    print("Median of %d runs of %d examples. zlib alone (C, level 6, memLevel 9, 256 KiB chunks): deflate %.0f MB/s, inflate "
          "%.0f MB/s; GZIP output is %.0f%% of the input." % (
              runs, medians.get(("bench", "records"), 0), medians.get(("c", "zlib_deflate_MBps"), 0), medians.get(("c", "zlib_inflate_MBps"), 0),
              100 * medians.get(("c", "gzip_ratio"), 0)))

    cpu = cpu_table(medians)
    if cpu:
        print()
        print(cpu)


def cpu_table(medians):
    """The same work per CPU second of the process (all its threads), the `<metric>_cpu` lines: a
    machine shared with other work moves these much less than the wall-clock rates."""
    rows = []
    zlib_cpu = medians.get(("c", "zlib_deflate_MBps_cpu"))
    for metric, name, unit in (
        ("write_none_rps", "Write, uncompressed", "rec/s"), ("write_gzip_MBps", "Write, GZIP", "MB/s"),
        ("read_none_rps", "Read, uncompressed", "rec/s"), ("read_gzip_rps", "Read, GZIP", "rec/s"),
        ("decode_rps", "Read and decode to Examples", "rec/s"),
        ("decode_columns_rps", "Read and decode into columns (Python)", "rec/s"),
        ("crc_GBps", "CRC32C", "GB/s"),
    ):
        cells = []
        for impl, _ in IMPLEMENTATIONS:
            value = medians.get((impl, metric + "_cpu"))
            if value is None:
                cells.append("–")
            elif unit == "rec/s":
                cells.append("%s rec/s" % rate(value))
            elif unit == "GB/s":
                cells.append("%.1f GB/s" % value)
            else:
                ratio = " (%.2fx zlib's CPU time)" % (zlib_cpu / value) if zlib_cpu else ""
                cells.append("%.0f MB/s%s" % (value, ratio))
        if any(cell != "–" for cell in cells):
            rows.append("| %s | %s |" % (name, " | ".join(cells)))
    if not rows:
        return ""
    header = ["| per CPU second | %s |" % " | ".join(name for _, name in IMPLEMENTATIONS),
              "|---|" + "---|" * len(IMPLEMENTATIONS)]
    zlib = "" if not zlib_cpu else "\n\nzlib alone per CPU second: deflate %.0f MB/s." % zlib_cpu
    return "\n".join(header + rows) + zlib


if __name__ == "__main__":
    main()
