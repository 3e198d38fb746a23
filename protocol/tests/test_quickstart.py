"""Runs the quickstart's Python and C bundles (examples/quickstart/steps/) under the step
contract, the way the host does (host_sim.py), and checks their outputs, responses and failure
modes. The Swift `report` bundle needs a Swift toolchain and a package build; the end-to-end
test Tests/ZenMLEndToEndTests/QuickstartTests.swift runs it through the real host.
"""

import json
import os
import shutil
import stat
import sys

import pytest

pytest.importorskip("yaml")

import host_sim  # noqa: E402
import reference  # noqa: E402

sys.path.insert(0, os.path.join(host_sim.PROTOCOL_DIR, "python"))
import zenml_step  # noqa: E402

REPOSITORY = os.path.dirname(host_sim.PROTOCOL_DIR)
STEPS = os.path.join(REPOSITORY, "examples", "quickstart", "steps")
GENERATE = os.path.join(STEPS, "generate")
NORMALIZE = os.path.join(STEPS, "normalize")
REPORT = os.path.join(STEPS, "report")

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="normalize needs a C compiler (cc)")


def read_values(directory):
    """(id, value) of each example, in order."""
    return [(e["id"][0], e["value"][0]) for e in zenml_step.read_examples(directory, as_dict=True)]


class Workspace:
    """Numbered work directories and a content-addressed store, made writable again at the end."""

    def __init__(self, root):
        self.root = str(root)
        self.store = os.path.join(self.root, "store")
        os.makedirs(self.store)
        self.count = 0

    def run(self, bundle, config=None, inputs=None, **options):
        self.count += 1
        workdir = os.path.join(self.root, "exec-%d" % self.count)
        return host_sim.run_step(bundle, workdir, config, inputs, **options)

    def keep(self, result, output):
        properties = (result.response.get("outputs") or {}).get(output, {}).get("properties", {})
        return host_sim.store(result.outputs[output], self.store, properties)

    def close(self):
        host_sim.make_writable(self.store)


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace(tmp_path)
    yield workspace
    workspace.close()


def assert_ok(result):
    assert result.ok, "%s\n--- stderr:\n%s\n--- stdout:\n%s" % (result.problems, result.stderr, result.stdout)


# ---- The bundles themselves ------------------------------------------------------------------

@pytest.mark.parametrize("bundle", [GENERATE, NORMALIZE, REPORT], ids=os.path.basename)
def test_bundle_links_stay_in_the_repository(bundle):
    """The bundles share the SDKs by relative links into the repository (the host hashes and
    packs what a link points to); a link must be relative and resolve inside the repository."""
    host_sim.load_manifest(bundle)
    for directory, names, files in os.walk(bundle):
        for name in names + files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                assert not os.path.isabs(os.readlink(path)), path
                target = os.path.realpath(path)
                assert os.path.exists(target), path
                assert target.startswith(os.path.realpath(REPOSITORY) + os.sep), path


# ---- generate --------------------------------------------------------------------------------

def test_generate_writes_examples(ws):
    result = ws.run(GENERATE, {"rows": 7})
    assert_ok(result)
    rows = read_values(result.outputs["examples"])
    assert [i for i, _ in rows] == list(range(7))
    assert all(0 <= v < 100 for _, v in rows)
    assert result.response["outputs"]["examples"]["properties"] == {"records": 7}


def test_generate_is_deterministic(ws):
    first = ws.run(GENERATE, {"rows": 20})
    second = ws.run(GENERATE, {"rows": 20})
    other = ws.run(GENERATE, {"rows": 20, "seed_offset": 1})
    for result in (first, second, other):
        assert_ok(result)
    digest = reference.tree_digest(first.outputs["examples"])
    assert reference.tree_digest(second.outputs["examples"]) == digest
    assert reference.tree_digest(other.outputs["examples"]) != digest


# ---- normalize (C, on the C SDK) -------------------------------------------------------------

@needs_cc
def test_normalize_rescales_and_keeps_order(ws):
    generated = ws.run(GENERATE, {"rows": 50})
    assert_ok(generated)
    examples = ws.keep(generated, "examples")
    normalized = ws.run(NORMALIZE, {"scale": 2.0}, {"examples": [examples]})
    assert_ok(normalized)
    before = read_values(examples)
    after = read_values(normalized.outputs["examples"])
    assert [i for i, _ in after] == [i for i, _ in before]
    values = [v for _, v in after]
    assert min(values) == 0.0 and max(values) == pytest.approx(2.0)
    low, high = min(v for _, v in before), max(v for _, v in before)
    for (_, original), (_, scaled) in zip(before, after):
        assert scaled == pytest.approx((original - low) / (high - low) * 2.0, rel=1e-5, abs=1e-5)
    assert normalized.response["outputs"]["examples"]["properties"] == {"records": 50}


@needs_cc
@pytest.mark.parametrize("encoding", ["python default", "swift style", "pretty, ASCII only, escaped slashes"])
def test_normalize_reads_any_valid_request_encoding(tmp_path, encoding):
    encodings = {
        "python default": json.dumps,
        "swift style": host_sim.swift_style_json,
        "pretty, ASCII only, escaped slashes": lambda r: json.dumps(r, indent=2, ensure_ascii=True).replace("/", "\\/"),
    }
    ws = Workspace(tmp_path / "dé jà vu")
    try:
        generated = ws.run(GENERATE, {"rows": 5})
        assert_ok(generated)
        examples = ws.keep(generated, "examples")
        normalized = ws.run(NORMALIZE, {"scale": 0.5}, {"examples": [examples]}, encode=encodings[encoding])
        assert_ok(normalized)
        assert max(v for _, v in read_values(normalized.outputs["examples"])) == pytest.approx(0.5)
    finally:
        ws.close()


@needs_cc
@pytest.mark.parametrize("contract", [2, "1", True, None])
def test_steps_refuse_other_contract_versions(ws, contract):
    generated = ws.run(GENERATE, {"rows": 4})
    assert_ok(generated)
    examples = ws.keep(generated, "examples")
    for bundle, inputs in [(GENERATE, None), (NORMALIZE, {"examples": [examples]})]:
        result = ws.run(bundle, None, inputs, request_changes=lambda r: r.update(contract=contract))
        name = os.path.basename(bundle)
        assert result.returncode != 0, name
        assert result.stdout.strip() == "", name
        assert "contract version 1" in result.stderr or "contract" in result.stderr, (name, result.stderr)


@needs_cc
def test_normalize_fails_clearly_on_examples_without_a_value(ws, tmp_path):
    bad = tmp_path / "bad"
    zenml_step.write_examples(str(bad), [{"id": 0, "value": 1.5}, {"id": 1, "other": 2.0}])
    result = ws.run(NORMALIZE, None, {"examples": [str(bad)]})
    assert result.returncode == 1
    response = json.loads(result.stdout)
    assert response["status"] == "error"
    assert "record 1" in response["message"] and "no single float 'value'" in response["message"]


@needs_cc
def test_normalize_fails_clearly_on_a_corrupt_record(ws, tmp_path):
    bad = tmp_path / "corrupt"
    zenml_step.write_examples(str(bad), [{"id": i, "value": float(i)} for i in range(3)])
    shard = os.path.join(str(bad), os.listdir(str(bad))[0])
    data = bytearray(open(shard, "rb").read())
    data[-6] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    result = ws.run(NORMALIZE, None, {"examples": [str(bad)]})
    assert result.returncode == 1
    assert "CRC" in json.loads(result.stdout)["message"] or "crc" in json.loads(result.stdout)["message"].lower()


# ---- The host simulator's own rules ----------------------------------------------------------

def test_simulator_catches_broken_steps(ws, tmp_path):
    bundle = tmp_path / "broken"
    bundle.mkdir()
    (bundle / "step.yaml").write_text(
        "name: broken\nversion: '1'\nentrypoint: sh\nargs: ['${BUNDLE}/run.sh']\n"
        "outputs: {a: T, b: T}\n")
    (bundle / "run.sh").write_text(
        'out=$(dirname "$PWD")/outputs\n'
        'echo hello\n'                      # stdout that is not one JSON object
        'ln -s /etc/passwd "$out/a/leak"\n'  # a symbolic link escaping its output
        'mkdir "$out/c"\n')                  # an undeclared output; b is left empty
    result = ws.run(str(bundle))
    text = "\n".join(result.problems)
    assert "stdout is not one JSON object" in text
    assert "undeclared output written: c" in text
    assert "declared output 'b' left empty" in text
    assert "symbolic link escapes its output" in text
