"""The penguins example end to end with the real zenml-run, the generator, and the contract
rules every bundle follows (checked with protocol/tests/host_sim.py)."""

import csv
import os
import shutil
import subprocess
import sys

import pytest

from conftest import PENGUINS, STEPS, Workspace

BUNDLES = ["csv-source", "split", "statistics", "schema", "validate", "train-softmax", "train-nb", "evaluate"]


def test_penguins_pipeline_end_to_end(tmp_path):
    # A copy of the example, as a user would have it: the pipeline file names ../../steps.
    root = tmp_path / "repo"
    shutil.copytree(PENGUINS, root / "examples" / "penguins")
    os.symlink(STEPS, root / "steps")
    # The bundles' SDK links (../../protocol/...) are followed from where the bundles are seen.
    os.symlink(os.path.join(os.path.dirname(STEPS), "protocol"), root / "protocol")
    ws = Workspace(root)
    pipeline = str(root / "examples" / "penguins" / "pipeline.yaml")
    first = ws.run(pipeline)
    steps = [step["name"] for step in first.document["run"]["steps"]]
    assert sorted(steps) == ["data", "evaluate", "schema", "split", "statistics", "train", "validate"]
    assert all(step["state"] == "done" for step in first.document["run"]["steps"])

    evaluation = first.json("evaluate", "evaluation", "evaluation.json")
    assert evaluation["examples"] > 50 and evaluation["accuracy"] > 0.9 and evaluation["blessed"] is True
    statistics = first.json("statistics", "statistics", "statistics.json")
    assert [d["name"] for d in statistics["datasets"]] == ["train", "eval"]
    schema = first.json("schema", "schema", "schema.json")
    species = next(f for f in schema["features"] if f["name"] == "species")
    assert species["domain"] == {"values": ["Adelie", "Chinstrap", "Gentoo"]}
    anomalies = first.json("validate", "anomalies", "anomalies.json")
    assert {d["feature"] for d in anomalies["drift"]} == {"island", "sex", "species"}
    # Split seed 7 puts both rows without measurements into eval: train always has them, so the
    # schema requires them (min_fraction 1) and eval shows a presence drop (README.md explains).
    assert {(a["feature"], a["kind"]) for a in anomalies["anomalies"]} == {
        (name, "presence_drop") for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")}

    again = ws.run(pipeline)
    assert all(step["state"] == "cached" for step in again.document["run"]["steps"])

    # The same pipeline with the other trainer (what `pipelines copy --set train.uses=...` makes):
    # everything upstream of the trainer is reused, not run again.
    with open(pipeline, encoding="utf-8") as handle:
        text = handle.read()
    assert "uses: ../../steps/train-softmax\n" in text
    other = root / "examples" / "penguins" / "pipeline-nb.yaml"
    other.write_text(text.replace("name: penguins\n", "name: penguins-nb\n")
                     .replace("uses: ../../steps/train-softmax\n", "uses: ../../steps/train-nb\n"))
    swapped = ws.run(str(other))
    states = {step["name"]: step["state"] for step in swapped.document["run"]["steps"]}
    assert states == {"data": "cached", "split": "cached", "statistics": "cached", "schema": "cached",
                      "validate": "cached", "train": "done", "evaluate": "done"}
    assert swapped.json("train", "model", "model.json")["kind"] == "gaussian_nb"
    assert swapped.json("evaluate", "evaluation", "evaluation.json")["accuracy"] > 0.9

    # Editing the data makes a new snapshot and re-runs everything downstream of it.
    data = root / "examples" / "penguins" / "data" / "penguins.csv"
    with open(data, "a", encoding="utf-8") as handle:
        handle.write("Gentoo,Biscoe,50.1,15.2,220,5500,male,2009\n")
    edited = ws.run(pipeline)
    assert edited.state("data") == "done"
    assert edited.digest("data", "examples") != first.digest("data", "examples")
    assert edited.state("split") == "done"


def test_generator_is_deterministic_and_penguin_like(tmp_path):
    script = os.path.join(PENGUINS, "generate.py")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for out in (a, b):
        subprocess.run([sys.executable, script, "--rows", "5000", "--out", str(out)], check=True)
    assert a.read_bytes() == b.read_bytes()
    with open(a, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5000
    assert {row["species"] for row in rows} == {"Adelie", "Chinstrap", "Gentoo"}
    assert {row["island"] for row in rows if row["species"] == "Gentoo"} == {"Biscoe"}
    assert 0 < sum(row["sex"] == "NA" for row in rows) < 500
    assert 0 < sum(row["bill_length_mm"] == "NA" for row in rows) < 100
    gentoo = [float(r["body_mass_g"]) for r in rows if r["species"] == "Gentoo" and r["body_mass_g"] != "NA"]
    adelie = [float(r["body_mass_g"]) for r in rows if r["species"] == "Adelie" and r["body_mass_g"] != "NA"]
    assert sum(gentoo) / len(gentoo) > sum(adelie) / len(adelie) + 1000
    other = tmp_path / "c.csv"
    subprocess.run([sys.executable, script, "--rows", "5000", "--seed", "1", "--out", str(other)], check=True)
    assert other.read_bytes() != a.read_bytes()


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_refuses_another_contract_version(tmp_path, name):
    pytest.importorskip("yaml")
    import host_sim

    bundle = os.path.join(STEPS, name)
    manifest = host_sim.load_manifest(bundle)
    config = {"label": "species"} if name.startswith("train") else {}
    if name == "csv-source":
        config = {"path": os.path.join(PENGUINS, "data", "penguins.csv")}
    inputs = {}
    for input_name in manifest.get("inputs") or {}:
        folder = tmp_path / ("in-" + input_name)
        folder.mkdir()
        inputs[input_name] = [str(folder)]

    def version_two(request):
        request["contract"] = 2

    work = tmp_path / "work"
    if "${BUILD}" in manifest["entrypoint"]:
        # host_sim builds into <work>/build but replaces ${BUILD} only in args.
        manifest = dict(manifest, entrypoint=manifest["entrypoint"].replace("${BUILD}", str(work / "build")))
    # A Swift bundle builds from scratch here (host_sim gives the build a HOME of its own).
    result = host_sim.run_step(bundle, str(work), config, inputs, manifest=manifest, request_changes=version_two,
                               timeout=600)
    assert result.returncode == 2, result.stderr
    assert "contract" in result.stderr
    assert all(not os.listdir(path) for path in result.outputs.values())


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_links_only_to_the_sdks_and_shared_module(name):
    bundle = os.path.join(STEPS, name)
    allowed = {"zenml_step.py": "../../protocol/python/zenml_step.py", "zenml_ml.py": "../lib/zenml_ml.py",
               "zenml_step.c": "../../protocol/c/zenml_step.c", "zenml_step.h": "../../protocol/c/zenml_step.h",
               "samples": "../samples"}
    for entry in os.listdir(bundle):
        path = os.path.join(bundle, entry)
        if os.path.islink(path):
            assert os.readlink(path) == allowed[entry]
            assert os.path.exists(path), "the link %s is broken" % path
    # A Swift bundle's package reaches the SDK's targets in the repository's Sources/.
    sources = os.path.join(bundle, "Sources")
    for entry in os.listdir(sources) if os.path.isdir(sources) else []:
        path = os.path.join(sources, entry)
        if os.path.islink(path):
            assert entry in ("CZenMLTFRecord", "ZenMLTFRecord", "ZenMLStep")
            assert os.readlink(path) == "../../../Sources/" + entry
            assert os.path.isdir(path), "the link %s is broken" % path
    for required in ("step.yaml", "README.md"):
        assert os.path.isfile(os.path.join(bundle, required)), "%s has no %s" % (name, required)


def test_editing_a_linked_shared_file_reruns_the_steps_that_use_it(tmp_path):
    root = tmp_path / "repo"
    for folder in ("steps", "protocol"):
        shutil.copytree(os.path.join(os.path.dirname(STEPS), folder), root / folder, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copytree(PENGUINS, root / "examples" / "penguins")
    # statistics (Swift) links no shared Python file: the repository's own copy, reached through
    # a link, is built once per machine (a copy would be another package to SwiftPM: a rebuild).
    shutil.rmtree(root / "steps" / "statistics")
    os.symlink(os.path.join(STEPS, "statistics"), root / "steps" / "statistics")
    ws = Workspace(root)
    pipeline = str(root / "examples" / "penguins" / "pipeline.yaml")
    ws.run(pipeline)
    with open(root / "steps" / "lib" / "zenml_ml.py", "a", encoding="utf-8") as handle:
        handle.write("# an edit\n")
    again = ws.run(pipeline)
    states = {step["name"]: step["state"] for step in again.document["run"]["steps"]}
    # csv-source, the C steps and the Swift one do not link zenml_ml.py; every other step does.
    assert states == {"data": "cached", "split": "cached", "train": "cached", "statistics": "cached",
                      "schema": "done", "validate": "done", "evaluate": "done"}
