"""Runs the quickstart bundles (examples/quickstart/steps/) under the step contract, the way
the host does (host_sim.py), and checks their outputs, responses and failure modes.
"""

import json
import os
import shutil
import stat

import pytest

pytest.importorskip("yaml")

import host_sim  # noqa: E402
import reference  # noqa: E402

STEPS = os.path.join(os.path.dirname(host_sim.PROTOCOL_DIR), "examples", "quickstart", "steps")
GENERATE = os.path.join(STEPS, "generate")
NORMALIZE = os.path.join(STEPS, "normalize")
REPORT = os.path.join(STEPS, "report")

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="normalize needs a C compiler (cc)")


def read_table(directory):
    with open(os.path.join(directory, "data.csv"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == "id,value"
    return [(int(i), float(v)) for i, v in (line.split(",") for line in lines[1:])]


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
def test_bundle_is_self_contained(bundle):
    manifest = host_sim.load_manifest(bundle)
    for directory, names, files in os.walk(bundle):
        for name in names + files:
            assert not os.path.islink(os.path.join(directory, name)), "bundles must not contain symbolic links"
    entrypoint = os.path.join(bundle, manifest["entrypoint"])
    if os.path.exists(entrypoint):
        assert os.stat(entrypoint).st_mode & stat.S_IXUSR, "%s must be executable" % entrypoint


# ---- generate --------------------------------------------------------------------------------

def test_generate_writes_rows(ws):
    result = ws.run(GENERATE, {"rows": 7})
    assert_ok(result)
    rows = read_table(result.outputs["table"])
    assert [i for i, _ in rows] == list(range(7))
    assert all(0 <= v < 100 for _, v in rows)
    assert result.response["outputs"]["table"]["properties"] == {"rows": 7}
    assert "generate:" in result.stderr


def test_generate_uses_defaults(ws):
    result = ws.run(GENERATE)
    assert_ok(result)
    assert len(read_table(result.outputs["table"])) == 100


def test_generate_is_deterministic(ws):
    first = ws.run(GENERATE, {"rows": 20})
    second = ws.run(GENERATE, {"rows": 20})
    other = ws.run(GENERATE, {"rows": 20, "seed_offset": 1})
    for result in (first, second, other):
        assert_ok(result)
    digest = reference.tree_digest(first.outputs["table"])
    assert reference.tree_digest(second.outputs["table"]) == digest
    assert reference.tree_digest(other.outputs["table"]) != digest


def test_running_leaves_the_bundle_unchanged(ws):
    before = reference.bundle_digest(GENERATE), reference.tree_digest(GENERATE)
    assert_ok(ws.run(GENERATE, {"rows": 3}))
    assert (reference.bundle_digest(GENERATE), reference.tree_digest(GENERATE)) == before


# ---- The whole chain -------------------------------------------------------------------------

@needs_cc
def test_pipeline_generate_normalize_report(ws):
    generated = ws.run(GENERATE, {"rows": 50})
    assert_ok(generated)
    table = ws.keep(generated, "table")

    normalized = ws.run(NORMALIZE, {"scale": 2.0}, {"table": [table]})
    assert_ok(normalized)
    values = [v for _, v in read_table(normalized.outputs["table"])]
    assert len(values) == 50
    assert min(values) == 0.0 and max(values) == 2.0
    assert normalized.response["outputs"]["table"]["properties"] == {"rows": 50, "scale": 2}
    scaled = ws.keep(normalized, "table")

    report = ws.run(REPORT, None, {"table": [scaled]})
    assert_ok(report)
    with open(os.path.join(report.outputs["report"], "summary.txt"), encoding="utf-8") as handle:
        summary = dict(line.split(": ") for line in handle.read().splitlines())
    mean = sum(values) / len(values)
    assert summary["rows"] == "50"
    assert summary["min"] == "0.000000" and summary["max"] == "2.000000"
    assert float(summary["mean"]) == pytest.approx(mean, abs=1e-6)
    assert report.response["metrics"]["mean"] == pytest.approx(mean, abs=1e-6)
    assert report.response["outputs"]["report"]["properties"] == {"rows": 50}


@needs_cc
def test_changing_scale_changes_normalize_and_report_only(ws):
    """What the cache sees: generate's key does not depend on scale; normalize's does."""
    generate_manifest = host_sim.load_manifest(GENERATE)
    key = reference.cache_key(reference.bundle_digest(GENERATE), generate_manifest,
                              host_sim.resolve_config(generate_manifest, {"rows": 30}), {}, {})
    generated = ws.run(GENERATE, {"rows": 30})
    assert generated.request["step"]["cache_key"] == key
    table = ws.keep(generated, "table")

    digests = {}
    for scale in (2.0, 3.0):
        normalized = ws.run(NORMALIZE, {"scale": scale}, {"table": [table]})
        assert_ok(normalized)
        digests[scale] = (normalized.request["step"]["cache_key"], reference.tree_digest(normalized.outputs["table"]))
    assert digests[2.0][0] != digests[3.0][0]
    assert digests[2.0][1] != digests[3.0][1]


# ---- Reading the host's JSON -----------------------------------------------------------------

def encodings():
    return {
        "python default": json.dumps,
        "swift style": host_sim.swift_style_json,
        "swift style, other key order": lambda r: host_sim.swift_style_json(r, seed=99),
        "pretty, ASCII only, escaped slashes": lambda r: json.dumps(r, indent=2, ensure_ascii=True).replace("/", "\\/"),
    }


@needs_cc
@pytest.mark.parametrize("encoding", sorted(encodings()))
def test_normalize_and_report_read_any_valid_encoding(tmp_path, encoding):
    # A workspace path with a space and non-ASCII characters (escaped as \u00e9 in ASCII JSON).
    ws = Workspace(tmp_path / "dé jà vu")
    try:
        generated = ws.run(GENERATE, {"rows": 5})
        assert_ok(generated)
        table = ws.keep(generated, "table")
        encode = encodings()[encoding]

        def add_decoys(request):
            # Keys named like the ones the steps look for, elsewhere in the request.
            request["config"]["path"] = "/decoy"
            request["config"]["inputs"] = {"table": [{"path": "/decoy"}]}
            request["pipeline"]["name"] = 'quick"start\\/'

        normalized = ws.run(NORMALIZE, {"scale": 0.5}, {"table": [table]}, encode=encode,
                            request_changes=add_decoys)
        assert_ok(normalized)
        assert max(v for _, v in read_table(normalized.outputs["table"])) == 0.5
        scaled = ws.keep(normalized, "table")
        report = ws.run(REPORT, None, {"table": [scaled]}, encode=encode, request_changes=add_decoys)
        assert_ok(report)
    finally:
        ws.close()


# ---- Failing clearly -------------------------------------------------------------------------

def bundles_with_inputs(ws):
    generated = ws.run(GENERATE, {"rows": 4})
    assert_ok(generated)
    table = ws.keep(generated, "table")
    cases = [(GENERATE, None), (REPORT, {"table": [table]})]
    if shutil.which("cc"):
        cases.append((NORMALIZE, {"table": [table]}))
    return cases


@pytest.mark.parametrize("contract", [2, "1", True, None])
def test_steps_refuse_other_contract_versions(ws, contract):
    for bundle, inputs in bundles_with_inputs(ws):
        result = ws.run(bundle, None, inputs, request_changes=lambda r: r.update(contract=contract))
        name = os.path.basename(bundle)
        assert result.returncode != 0, name
        assert result.stdout.strip() == "", name
        assert "contract version 1" in result.stderr, (name, result.stderr)
        assert json.dumps(contract) in result.stderr, (name, result.stderr)


def test_report_fails_clearly_without_data(ws):
    empty = os.path.join(ws.root, "empty-table")
    os.makedirs(empty)
    with open(os.path.join(empty, "other.txt"), "w") as handle:
        handle.write("x")
    result = ws.run(REPORT, None, {"table": [empty]})
    assert result.returncode == 1
    assert json.loads(result.stdout)["status"] == "error"
    assert "data.csv" in json.loads(result.stdout)["message"]


@needs_cc
def test_normalize_fails_clearly_on_a_bad_table(ws):
    bad = os.path.join(ws.root, "bad-table")
    os.makedirs(bad)
    with open(os.path.join(bad, "data.csv"), "w") as handle:
        handle.write("id,value\n0,1.5\n1,abc\n")
    result = ws.run(NORMALIZE, None, {"table": [bad]})
    assert result.returncode == 1
    response = json.loads(result.stdout)
    assert response["status"] == "error"
    assert "'abc' is not a number" in response["message"]
    assert "abc" in result.stderr


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
