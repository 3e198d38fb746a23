"""split through the real zenml-run: the documented hash, ratios, keys, determinism."""

import collections
import os

from conftest import PENGUINS_CSV, read_split

from zenml_step import read_records

M64 = (1 << 64) - 1


def fnv1a(hash_value, data):
    for byte in data:
        hash_value = ((hash_value ^ byte) * 0x100000001B3) & M64
    return hash_value


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def expected_split(record, seed, ratios):
    """The split of README.md, computed independently of the C code: FNV-1a over the seed's 8
    little-endian bytes and the record, splitmix64's finalizer, the top 53 bits against the
    cumulative ratios."""
    point = mix(fnv1a(fnv1a(0xCBF29CE484222325, seed.to_bytes(8, "little")), record)) >> 11
    total = sum(ratios)
    cumulative = 0.0
    for index, ratio in enumerate(ratios):
        cumulative += ratio / total
        if index == len(ratios) - 1 or point < round(cumulative * 2 ** 53):
            return index


def pipeline(ws, path, **config):
    return ws.pipeline({
        "data": {"uses": "csv-source", "config": {"path": path}},
        "split": {"uses": "split", "config": config, "inputs": {"examples": "data.examples"}},
    })


def test_split_follows_the_documented_hash(shared_workspace):
    ws = shared_workspace
    result = ws.run(pipeline(ws, PENGUINS_CSV, seed=5, train_ratio=0.7, eval_ratio=0.2, test_ratio=0.1))
    records = list(read_records(result.path("data", "examples")))
    out = result.path("split", "examples")
    assert sorted(os.listdir(out)) == ["eval", "test", "train"]
    got = {name: list(read_records(os.path.join(out, name))) for name in ("train", "eval", "test")}
    expected = {"train": [], "eval": [], "test": []}
    for record in records:
        expected[("train", "eval", "test")[expected_split(record, 5, [0.7, 0.2, 0.1])]].append(record)
    assert got == expected  # same records, same order within each split
    assert 0.6 < len(got["train"]) / len(records) < 0.8
    step = result.step("split")
    assert step["state"] in ("done", "cached")


def test_same_input_and_config_give_the_same_split_on_rerun(shared_workspace):
    ws = shared_workspace
    path = pipeline(ws, PENGUINS_CSV, seed=11)
    first = ws.run(path)
    forced = ws.run(path, "--no-cache")
    assert forced.state("split") == "done"
    assert forced.digest("split", "examples") == first.digest("split", "examples")
    other_seed = ws.run(pipeline(ws, PENGUINS_CSV, seed=12))
    assert other_seed.digest("split", "examples") != first.digest("split", "examples")


def test_two_way_split_has_no_test_folder_and_keeps_every_record(shared_workspace):
    ws = shared_workspace
    result = ws.run(pipeline(ws, PENGUINS_CSV))
    out = result.path("split", "examples")
    assert sorted(os.listdir(out)) == ["eval", "train"]
    whole = collections.Counter(read_records(result.path("data", "examples")))
    parts = collections.Counter(read_records(os.path.join(out, "train"))) + \
        collections.Counter(read_records(os.path.join(out, "eval")))
    assert parts == whole


def test_key_feature_keeps_equal_keys_together(workspace):
    rows = [["group", "x"]] + [["g%d" % (i % 20), str(i)] for i in range(400)]
    path = workspace.write_csv("groups.csv", rows)
    result = workspace.run(pipeline(workspace, path, key="group", seed=3))
    out = result.path("split", "examples")
    train = {row["group"] for row in read_split(os.path.join(out, "train"))}
    evaluation = {row["group"] for row in read_split(os.path.join(out, "eval"))}
    assert train and evaluation and not (train & evaluation)
    assert len(train | evaluation) == 20
    # The documented rule on the key's bytes decides each group.
    for group in train:
        assert expected_split(group.encode(), 3, [0.8, 0.2]) == 0
    for group in evaluation:
        assert expected_split(group.encode(), 3, [0.8, 0.2]) == 1


def test_empty_input_gives_empty_splits(workspace):
    path = workspace.write_csv("empty.csv", [["a"]])
    result = workspace.run(pipeline(workspace, path))
    out = result.path("split", "examples")
    assert read_split(os.path.join(out, "train")) == [] and read_split(os.path.join(out, "eval")) == []
