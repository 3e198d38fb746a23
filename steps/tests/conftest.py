"""Fixtures for the steps/ bundle tests: they drive the real zenml-run binary.

The binary is $ZENML_RUN, else <repo>/.build/debug/zenml-run (scripts/test builds it first).
Each test workspace is a temporary folder with `zenml-run init`; pipelines name the bundles by
absolute path, so they can live anywhere.
"""

import csv
import json
import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
STEPS = os.path.dirname(TESTS)
REPO = os.path.dirname(STEPS)
PENGUINS = os.path.join(REPO, "examples", "penguins")
PENGUINS_CSV = os.path.join(PENGUINS, "data", "penguins.csv")

sys.path.insert(0, os.path.join(REPO, "protocol", "python"))
sys.path.insert(0, os.path.join(REPO, "protocol", "tests"))


def zenml_binary():
    candidate = os.environ.get("ZENML_RUN") or os.path.join(REPO, ".build", "debug", "zenml-run")
    if not os.access(candidate, os.X_OK):
        pytest.fail("zenml-run not found at %s: build it (swift build) or set ZENML_RUN" % candidate)
    return candidate


def bundle(name):
    return os.path.join(STEPS, name)


class RunResult:
    def __init__(self, process, workspace):
        self.returncode = process.returncode
        self.stdout = process.stdout
        self.stderr = process.stderr
        self.workspace = workspace
        self.document = None
        try:
            self.document = json.loads(process.stdout)
        except ValueError:
            pass

    @property
    def ok(self):
        return self.returncode == 0

    def step(self, name):
        for step in self.document["run"]["steps"]:
            if step["name"] == name:
                return step
        raise KeyError(name)

    def state(self, name):
        return self.step(name)["state"]

    def digest(self, step, output):
        return self.step(step)["outputs"][output]

    def path(self, step, output):
        return self.workspace.artifact(self.digest(step, output))

    def json(self, step, output, name):
        with open(os.path.join(self.path(step, output), name), encoding="utf-8") as handle:
            return json.load(handle)

    def __repr__(self):
        return "RunResult(%d)\n--- stdout\n%s\n--- stderr\n%s" % (self.returncode, self.stdout, self.stderr)


class Workspace:
    """A zenml-run workspace in a temporary folder, with pipelines written from dicts."""

    def __init__(self, root):
        self.root = str(root)
        self.binary = zenml_binary()
        self.count = 0
        subprocess.run([self.binary, "init"], cwd=self.root, check=True, capture_output=True)

    def write(self, name, text):
        path = os.path.join(self.root, name)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        return path

    def write_csv(self, name, rows):
        path = os.path.join(self.root, name)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)
        return path

    def pipeline(self, steps, name="test"):
        """Writes a pipeline file from {step: {"uses": bundle name, "config": {...}, "inputs": {...}}}."""
        self.count += 1
        spec = {"name": name, "steps": {}}
        for step, entry in steps.items():
            item = {"uses": bundle(entry["uses"])}
            for key in ("config", "inputs"):
                if entry.get(key):
                    item[key] = entry[key]
            spec["steps"][step] = item
        # JSON is YAML: the host's YAML reader takes flow mappings and quoted strings.
        return self.write("pipeline-%d.yaml" % self.count, json.dumps(spec, indent=1))

    def run(self, pipeline, *options, expect_ok=True):
        process = subprocess.run([self.binary, "run", pipeline, "--json", *options], cwd=self.root,
                                 capture_output=True, text=True, timeout=600)
        result = RunResult(process, self)
        if expect_ok:
            assert result.ok, repr(result)
        return result

    def artifact(self, digest):
        hex_digest = digest.split(":", 1)[1]
        return os.path.join(self.root, ".zenml", "artifacts", "sha256", hex_digest[:2], hex_digest)


@pytest.fixture
def workspace(tmp_path):
    return Workspace(tmp_path)


@pytest.fixture(scope="module")
def shared_workspace(tmp_path_factory):
    """One workspace per test module, so the C bundles are built once per module."""
    return Workspace(tmp_path_factory.mktemp("ws"))


def read_split(directory):
    """Every Example of a folder of shards, as dicts of name -> first value (str for bytes)."""
    from zenml_step import read_examples

    rows = []
    for example in read_examples(directory):
        row = {}
        for key, feature in example.features.items():
            value = feature.values[0]
            row[key] = value.decode("utf-8") if isinstance(value, bytes) else value
        rows.append(row)
    return rows


def penguin_rows():
    with open(PENGUINS_CSV, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
