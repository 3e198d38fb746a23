"""statistics through the real zenml-run, checked against values computed here independently."""

import collections
import os
import random
import statistics as pystats

import pytest

from conftest import PENGUINS_CSV, penguin_rows


def run_statistics(ws, path, split=False, **config):
    steps = {"data": {"uses": "csv-source", "config": {"path": path}}}
    source = "data.examples"
    if split:
        steps["split"] = {"uses": "split", "inputs": {"examples": "data.examples"}}
        source = "split.examples"
    steps["statistics"] = {"uses": "statistics", "config": config, "inputs": {"examples": source}}
    return ws.run(ws.pipeline(steps))


def features(document, dataset="all"):
    for entry in document["datasets"]:
        if entry["name"] == dataset:
            return {feature["name"]: feature for feature in entry["features"]}
    raise KeyError(dataset)


def close(a, b, tolerance=1e-6):
    return abs(a - b) <= tolerance * max(1.0, abs(b))


def test_small_table_exact_values(workspace):
    rows = [["i", "f", "s", "gap"],
            ["3", "1.5", "red", ""], ["1", "NA", "blue", ""], ["4", "-2.25", "red", ""], ["1", "0", "green", ""],
            ["5", "10", "", ""], ["9", "3.5", "red", ""], ["2", "0", "blue", ""], ["", "7.75", "red", ""]]
    path = workspace.write_csv("small.csv", rows)
    result = run_statistics(workspace, path)
    document = result.json("statistics", "statistics", "statistics.json")
    assert document["format"] == "zenml.statistics/1"
    assert document["datasets"][0]["num_examples"] == 8
    got = features(document)
    assert set(got) == {"i", "f", "s"}  # the all-missing column has no feature

    ints = [3, 1, 4, 1, 5, 9, 2]
    i = got["i"]
    assert (i["type"], i["count"], i["missing"]) == ("INT", 7, 1)
    assert i["numeric"]["min"] == 1 and i["numeric"]["max"] == 9
    assert close(i["numeric"]["mean"], pystats.mean(ints))
    assert close(i["numeric"]["std_dev"], pystats.pstdev(ints))
    assert i["numeric"]["median"] == pystats.median(ints)
    assert i["numeric"]["num_zeros"] == 0
    assert sum(bucket["count"] for bucket in i["numeric"]["histogram"]) == 7
    assert i["numeric"]["histogram"][0]["low"] == 1 and i["numeric"]["histogram"][-1]["high"] == 9

    floats = [1.5, -2.25, 0.0, 10.0, 3.5, 0.0, 7.75]  # exact in float32
    f = got["f"]
    assert (f["type"], f["count"], f["missing"]) == ("FLOAT", 7, 1)
    assert (f["numeric"]["min"], f["numeric"]["max"]) == (-2.25, 10)
    assert close(f["numeric"]["mean"], pystats.mean(floats))
    assert close(f["numeric"]["std_dev"], pystats.pstdev(floats))
    assert f["numeric"]["median"] == pystats.median(floats)
    assert f["numeric"]["num_zeros"] == 2

    s = got["s"]
    assert (s["type"], s["count"], s["missing"]) == ("STRING", 7, 1)
    values = ["red", "blue", "red", "green", "red", "blue", "red"]
    assert s["string"]["unique"] == 3
    assert s["string"]["top_values"] == [{"value": "red", "count": 4}, {"value": "blue", "count": 2},
                                         {"value": "green", "count": 1}]
    assert close(s["string"]["avg_length"], sum(map(len, values)) / len(values))


def test_penguins_per_split_against_the_csv(shared_workspace):
    result = run_statistics(shared_workspace, PENGUINS_CSV, split=True)
    document = result.json("statistics", "statistics", "statistics.json")
    assert [d["name"] for d in document["datasets"]] == ["train", "eval"]
    assert sum(d["num_examples"] for d in document["datasets"]) == 344
    # Counts add up over the splits to the whole table's.
    rows = penguin_rows()
    for column in rows[0]:
        present = sum(1 for row in rows if row[column] != "NA")
        assert sum(features(document, d["name"])[column]["count"] for d in document["datasets"]) == present
    species = collections.Counter(row["species"] for row in rows)
    merged = collections.Counter()
    for d in document["datasets"]:
        for top in features(document, d["name"])["species"]["string"]["top_values"]:
            merged[top["value"]] += top["count"]
    assert merged == species


def test_pbtxt_loads_as_tensorflow_metadata(shared_workspace):
    text_format = pytest.importorskip("google.protobuf.text_format")
    statistics_pb2 = pytest.importorskip("tensorflow_metadata.proto.v0.statistics_pb2")
    result = run_statistics(shared_workspace, PENGUINS_CSV, split=True)
    with open(os.path.join(result.path("statistics", "statistics"), "statistics.pbtxt"), encoding="utf-8") as handle:
        proto = text_format.Parse(handle.read(), statistics_pb2.DatasetFeatureStatisticsList())
    document = result.json("statistics", "statistics", "statistics.json")
    assert [d.name for d in proto.datasets] == ["train", "eval"]
    train = {f.path.step[0]: f for f in proto.datasets[0].features}
    expected = features(document, "train")
    assert train["body_mass_g"].num_stats.mean == pytest.approx(expected["body_mass_g"]["numeric"]["mean"])
    assert train["body_mass_g"].num_stats.common_stats.num_missing == expected["body_mass_g"]["missing"]
    assert train["species"].string_stats.unique == 3
    assert train["species"].type == statistics_pb2.FeatureNameStatistics.STRING
    assert sum(b.sample_count for b in train["bill_length_mm"].num_stats.histograms[0].buckets) == \
        expected["bill_length_mm"]["count"]


def test_beyond_the_exact_limit_the_median_comes_from_the_sample(workspace):
    rng = random.Random(1)
    values = [rng.randrange(1_000_000) for _ in range(3000)]
    path = workspace.write_csv("wide.csv", [["v"]] + [[str(v)] for v in values])
    exact = features(run_statistics(workspace, path).json("statistics", "statistics", "statistics.json"))["v"]
    assert exact["numeric"]["median"] == pystats.median(values)
    # The sample starts from the exact counts when they overflow (a sample of all values so far
    # when it is larger than them, of some of them otherwise), then goes on as a reservoir.
    for exact_limit, sample_size in ((100, 500), (1000, 200)):
        sampled = features(run_statistics(workspace, path, exact_limit=exact_limit, sample_size=sample_size)
                           .json("statistics", "statistics", "statistics.json"))["v"]
        assert abs(sampled["numeric"]["median"] - pystats.median(values)) < 100_000  # within 10% of the range
        assert sampled["numeric"]["mean"] == exact["numeric"]["mean"]  # exact whatever the limits
        assert sampled["numeric"]["min"] == min(values) and sampled["numeric"]["max"] == max(values)
        assert round(sum(b["count"] for b in sampled["numeric"]["histogram"])) == 3000
        assert sampled["numeric"]["histogram"] != exact["numeric"]["histogram"]  # approximate counts


def test_feature_absent_from_one_split_and_mixed_valency(tmp_path):
    """A single-step case through protocol/tests/host_sim.py: hand-written split Examples where
    `x` has values only in train and `tags` holds several values per example."""
    pytest.importorskip("yaml")  # host_sim reads step.yaml with PyYAML
    import host_sim
    from conftest import bundle
    from zenml_step import write_examples

    examples = tmp_path / "examples"
    write_examples(str(examples / "train"), [{"x": 1.5, "tags": ["a", "b"]}, {"x": 2.5, "tags": ["a"]}])
    write_examples(str(examples / "eval"), [{"tags": ["c", "a", "a"]}])
    # host_sim gives the build a HOME of its own, so this builds the Swift step from scratch.
    result = host_sim.run_step(bundle("statistics"), str(tmp_path / "work"), {}, {"examples": [str(examples)]},
                               timeout=600)
    assert result.ok, result.problems
    with open(os.path.join(result.outputs["statistics"], "statistics.json"), encoding="utf-8") as handle:
        document = __import__("json").load(handle)
    train, evaluation = features(document, "train"), features(document, "eval")
    assert train["x"]["numeric"]["mean"] == 2 and train["x"]["count"] == 2
    assert evaluation["x"]["count"] == 0 and evaluation["x"]["missing"] == 1
    assert evaluation["x"]["numeric"]["histogram"] == [] and evaluation["x"]["numeric"]["mean"] is None
    assert train["tags"]["num_values"] == {"min": 1, "max": 2, "total": 3}
    assert evaluation["tags"]["string"]["top_values"] == [{"value": "a", "count": 2}, {"value": "c", "count": 1}]
    assert result.response["outputs"]["statistics"]["properties"]["train_examples"] == 2
