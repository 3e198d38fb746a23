"""statistics: per split and feature statistics of an Examples artifact, in one streaming pass.

Memory does not grow with the number of records: every accumulator is either a handful of
numbers or bounded by config (`exact_limit` distinct numbers, `sample_size` sampled numbers,
`string_limit` distinct strings per feature). See README.md for what is exact and when.
"""

import math
import os
import random

from zenml_step import fail, log, read_examples, read_request, write_response
from zenml_ml import (FLOAT, INT, STRING, Enum, TextProto, example_splits, feature_type, num, write_json)


class NumericAccumulator:
    """Count, mean and variance (Welford), min, max, zeros; exact value counts while there are
    at most `exact_limit` distinct values, and a uniform reservoir sample of `sample_size` values
    (Algorithm R, seeded) for the median and histogram beyond that."""

    def __init__(self, exact_limit, sample_size, seed, digits):
        # float32 values (FLOAT features) carry about 7 significant digits: printing more shows
        # binary noise (13.1999998 for 13.2).
        self.digits = digits
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = None
        self.max = None
        self.zeros = 0
        self.exact = {}
        self.exact_limit = exact_limit
        self.sample = []
        self.sample_size = sample_size
        self.random = random.Random(seed)

    def add(self, values):
        exact = self.exact
        sample = self.sample
        for value in values:
            self.n += 1
            delta = value - self.mean
            self.mean += delta / self.n
            self.m2 += delta * (value - self.mean)
            if self.min is None or value < self.min:
                self.min = value
            if self.max is None or value > self.max:
                self.max = value
            if value == 0:
                self.zeros += 1
            if exact is not None:
                exact[value] = exact.get(value, 0) + 1
                if len(exact) > self.exact_limit:
                    self.start_sample()
                    exact, sample = None, self.sample
            elif len(sample) < self.sample_size:
                sample.append(value)
            else:  # Algorithm R: the n-th value replaces a random slot with probability size / n
                slot = self.random.randrange(self.n)
                if slot < self.sample_size:
                    sample[slot] = value

    def start_sample(self):
        """Replaces the exact counts by a uniform sample without replacement of the values so far
        (what a reservoir run from the start would hold), from which Algorithm R continues. While
        the counts are exact no sample is kept, which saves a random draw per value."""
        picks = sorted(self.random.sample(range(self.n), min(self.sample_size, self.n)))
        self.sample = []
        position = 0
        items = iter(self.exact.items())
        value, count = next(items)
        for pick in picks:
            while pick >= position + count:
                position += count
                value, count = next(items)
            self.sample.append(value)
        self.exact = None

    def counted_values(self):
        """Sorted (value, count) pairs, their total, the weight of one count, and whether they are
        exact: all values, or the sample, where each sampled value stands for n / sample size."""
        if self.exact is not None:
            return sorted(self.exact.items()), self.n, 1.0, True
        return [(value, 1) for value in sorted(self.sample)], len(self.sample), self.n / len(self.sample), False

    @staticmethod
    def median(pairs, total):
        """The middle value (the mean of the two middle values for an even total)."""
        low_rank, high_rank = (total - 1) // 2, total // 2
        low = high = None
        seen = 0
        for value, count in pairs:
            if low is None and low_rank < seen + count:
                low = value
            if high_rank < seen + count:
                high = value
                break
            seen += count
        return low if low == high else (low + high) / 2

    def histogram(self, pairs, weight, buckets):
        if not self.n:
            return []
        low, high = self.min, self.max
        if low == high:
            return [{"low": num(low, self.digits), "high": num(high, self.digits), "count": self.n}]
        width = (high - low) / buckets
        counts = [0.0] * buckets
        for value, count in pairs:
            index = min(int((value - low) / width), buckets - 1)
            counts[index] += count * weight
        digits = self.digits
        return [{"low": num(low + i * width, digits),
                 "high": num(high if i == buckets - 1 else low + (i + 1) * width, digits),
                 "count": num(round(count, 3))} for i, count in enumerate(counts)]

    def summary(self, buckets):
        if not self.n:
            return {"min": None, "max": None, "mean": None, "std_dev": None, "median": None, "num_zeros": 0,
                    "histogram": []}, True
        pairs, total, weight, exact = self.counted_values()
        return {
            "min": num(self.min, self.digits), "max": num(self.max, self.digits), "mean": num(self.mean),
            "std_dev": num(math.sqrt(self.m2 / self.n)), "median": num(self.median(pairs, total), self.digits),
            "num_zeros": self.zeros, "histogram": self.histogram(pairs, weight, buckets),
        }, exact


class StringAccumulator:
    """Value counts (at most `limit` distinct values; later new values are counted in the
    totals but not by value), total length in UTF-8 bytes."""

    def __init__(self, limit):
        self.counts = {}
        self.limit = limit
        self.values = 0
        self.length = 0
        self.overflow = False

    def add(self, values):
        counts = self.counts
        for value in values:
            self.values += 1
            self.length += len(value)
            if value in counts:
                counts[value] += 1
            elif len(counts) < self.limit:
                counts[value] = 1
            else:
                self.overflow = True

    def summary(self, top_k):
        top = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:top_k]
        return {
            "unique": len(self.counts),
            "avg_length": num(self.length / self.values if self.values else 0),
            "top_values": [{"value": value.decode("utf-8", "replace"), "count": count} for value, count in top],
        }, not self.overflow


class FeatureAccumulator:
    def __init__(self, name, kind, config, seed):
        self.name = name
        self.type = kind
        self.kind = {INT: "int64_list", FLOAT: "float_list", STRING: "bytes_list"}[kind]
        self.present = 0
        self.min_values = None
        self.max_values = 0
        self.total_values = 0
        if kind == STRING:
            self.values = StringAccumulator(config["string_limit"])
        else:
            self.values = NumericAccumulator(config["exact_limit"], config["sample_size"], seed,
                                             7 if kind == FLOAT else 9)

    def add(self, values):
        count = len(values)
        self.present += 1
        self.total_values += count
        if self.min_values is None or count < self.min_values:
            self.min_values = count
        if count > self.max_values:
            self.max_values = count
        self.values.add(values)


def split_statistics(name, directory, config, types):
    features = {}
    records = 0
    for example in read_examples(directory):
        records += 1
        for key, feature in example.features.items():
            accumulator = features.get(key)
            if accumulator is None:
                kind = feature_type(feature)
                if kind is None:
                    continue  # a Feature with no list set carries no value
                if types.setdefault(key, kind) != kind:
                    fail("feature %r is %s in some records and %s in others (split %s, record %d); an Examples "
                         "artifact must give each feature one type" % (key, types[key], kind, name, records - 1))
                seed = int.from_bytes(key.encode("utf-8")[:8].ljust(8, b"\0"), "little") ^ config["seed"]
                accumulator = features[key] = FeatureAccumulator(key, kind, config, seed)
            elif feature.kind != accumulator.kind and feature.kind is not None:
                fail("feature %r is %s in some records and %s in others (split %s, record %d); an Examples "
                     "artifact must give each feature one type" % (key, accumulator.type, feature_type(feature),
                                                                   name, records - 1))
            accumulator.add(feature.values)
    return records, features


def feature_document(accumulator, records, config, approximations):
    entry = {"name": accumulator.name, "type": accumulator.type, "count": accumulator.present,
             "missing": records - accumulator.present,
             "num_values": {"min": accumulator.min_values or 0, "max": accumulator.max_values,
                            "total": accumulator.total_values}}
    if accumulator.type == STRING:
        entry["string"], exact = accumulator.values.summary(config["top_k"])
    else:
        entry["numeric"], exact = accumulator.values.summary(config["histogram_buckets"])
    if not exact:
        approximations.append(accumulator.name)
    return entry


def empty_feature(name, kind, records):
    """A feature seen in another split but in no record of this one."""
    entry = {"name": name, "type": kind, "count": 0, "missing": records,
             "num_values": {"min": 0, "max": 0, "total": 0}}
    if kind == STRING:
        entry["string"] = {"unique": 0, "avg_length": 0, "top_values": []}
    else:
        entry["numeric"] = {"min": None, "max": None, "mean": None, "std_dev": None, "median": None,
                            "num_zeros": 0, "histogram": []}
    return entry


def pbtxt(document):
    """The same statistics as a tensorflow_metadata DatasetFeatureStatisticsList (text format)."""
    out = TextProto()
    for dataset in document["datasets"]:
        with out.message("datasets"):
            out.field("name", dataset["name"])
            out.field("num_examples", dataset["num_examples"])
            for feature in dataset["features"]:
                lengths = feature["num_values"]
                with out.message("features"):
                    with out.message("path"):
                        out.field("step", feature["name"])
                    out.field("type", Enum(feature["type"]))
                    block = "string_stats" if feature["type"] == STRING else "num_stats"
                    with out.message(block):
                        with out.message("common_stats"):
                            out.field("num_non_missing", feature["count"])
                            out.field("num_missing", feature["missing"])
                            out.field("min_num_values", lengths["min"])
                            out.field("max_num_values", lengths["max"])
                            if feature["count"]:
                                out.field("avg_num_values", lengths["total"] / feature["count"])
                            out.field("tot_num_values", lengths["total"])
                        if feature["type"] == STRING:
                            stats = feature["string"]
                            out.field("unique", stats["unique"])
                            for top in stats["top_values"]:
                                with out.message("top_values"):
                                    out.field("value", top["value"])
                                    out.field("frequency", top["count"])
                            out.field("avg_length", stats["avg_length"])
                        else:
                            stats = feature["numeric"]
                            for key in ("mean", "std_dev", "num_zeros", "min", "median", "max"):
                                out.field(key, stats[key])
                            if stats["histogram"]:
                                with out.message("histograms"):
                                    for bucket in stats["histogram"]:
                                        with out.message("buckets"):
                                            out.field("low_value", bucket["low"])
                                            out.field("high_value", bucket["high"])
                                            out.field("sample_count", bucket["count"])
                                    out.field("type", Enum("STANDARD"))
    return out.text()


def main():
    request = read_request()
    config = dict(request["config"])
    config.setdefault("top_k", 20)
    config.setdefault("histogram_buckets", 10)
    config.setdefault("exact_limit", 20000)
    config.setdefault("sample_size", 20000)
    config.setdefault("string_limit", 100000)
    config.setdefault("seed", 0)
    source = request["inputs"]["examples"][0]["path"]

    types = {}  # feature -> type, across splits: a feature has one type in the whole artifact
    results = []
    for name, directory in example_splits(source):
        records, features = split_statistics(name, directory, config, types)
        log("split %s: %d records, %d features" % (name, records, len(features)))
        results.append((name, records, features))

    document = {"format": "zenml.statistics/1", "datasets": []}
    approximations = []
    for name, records, features in results:
        entries = []
        for key in sorted(types):
            accumulator = features.get(key)
            if accumulator is None:
                entries.append(empty_feature(key, types[key], records))
                continue
            entries.append(feature_document(accumulator, records, config, approximations))
        document["datasets"].append({"name": name, "num_examples": records, "features": entries})
    if approximations:
        log("approximate (sampled) medians/histograms or capped string counts for:",
            ", ".join(sorted(set(approximations))))

    output = request["outputs"]["statistics"]["path"]
    write_json(os.path.join(output, "statistics.json"), document)
    with open(os.path.join(output, "statistics.pbtxt"), "w", encoding="utf-8") as handle:
        handle.write(pbtxt(document))

    properties = {"splits": ",".join(d["name"] for d in document["datasets"]), "features": len(types),
                  "approximate_features": len(set(approximations))}
    metrics = {}
    for dataset in document["datasets"]:
        properties["%s_examples" % dataset["name"]] = dataset["num_examples"]
        metrics["%s_examples" % dataset["name"]] = dataset["num_examples"]
    write_response(outputs={"statistics": properties}, metrics=metrics,
                   message="%d features over %s" % (len(types), ", ".join(
                       "%s (%d)" % (d["name"], d["num_examples"]) for d in document["datasets"])))


if __name__ == "__main__":
    main()
