"""Checks the contract's JSON Schemas: that they are valid draft 2020-12 schemas, that the
examples in protocol/examples/ and the quickstart manifests pass, and that typical mistakes fail.

Run from the repository root:  python3 -m pytest protocol/tests -q
"""

import copy
import glob
import json
import os
import re

import jsonschema
import pytest

PROTOCOL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(PROTOCOL_DIR)
SCHEMA_DIR = os.path.join(PROTOCOL_DIR, "schemas")
EXAMPLE_DIR = os.path.join(PROTOCOL_DIR, "examples")
QUICKSTART_DIR = os.path.join(REPO_DIR, "examples", "quickstart")

SCHEMAS = ("request", "response", "manifest")


def load_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def schema(name):
    return load_json(os.path.join(SCHEMA_DIR, name + ".schema.json"))


def validator(name):
    return jsonschema.Draft202012Validator(schema(name))


def example(name):
    return load_json(os.path.join(EXAMPLE_DIR, name))


def examples(prefix):
    paths = sorted(glob.glob(os.path.join(EXAMPLE_DIR, prefix + "*.json")))
    assert paths, "no examples named %s*.json in %s" % (prefix, EXAMPLE_DIR)
    return paths


# ---- The schemas themselves ------------------------------------------------------------------

@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12(name):
    document = schema(name)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_strict_at_the_top(name):
    assert schema(name)["additionalProperties"] is False


# ---- Good documents --------------------------------------------------------------------------

@pytest.mark.parametrize("path", examples("request"), ids=os.path.basename)
def test_example_requests_are_valid(path):
    validator("request").validate(load_json(path))


@pytest.mark.parametrize("path", examples("response"), ids=os.path.basename)
def test_example_responses_are_valid(path):
    validator("response").validate(load_json(path))


@pytest.mark.parametrize("path", examples("manifest"), ids=os.path.basename)
def test_example_manifests_are_valid(path):
    validator("manifest").validate(load_json(path))


def test_yaml_manifest_example_is_the_json_one():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(EXAMPLE_DIR, "manifest-full.step.yaml"), encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    assert document == example("manifest-full.json")


def quickstart_manifests():
    return sorted(glob.glob(os.path.join(QUICKSTART_DIR, "steps", "*", "step.yaml")))


def test_quickstart_has_three_bundles():
    names = [os.path.basename(os.path.dirname(p)) for p in quickstart_manifests()]
    assert names == ["generate", "normalize", "report"]


@pytest.mark.parametrize("path", quickstart_manifests(), ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_quickstart_manifests_are_valid(path):
    yaml = pytest.importorskip("yaml")
    with open(path, encoding="utf-8") as handle:
        manifest = yaml.safe_load(handle)
    validator("manifest").validate(manifest)
    assert manifest["name"] == os.path.basename(os.path.dirname(path))
    assert manifest.get("description"), "each quickstart bundle describes itself"


GOOD_VARIANTS = {
    "manifest": [
        ("numeric version and args", "manifest-minimal.json", lambda m: m.update(version=1.5, args=["-n", 3])),
        ("contract omitted", "manifest-minimal.json", lambda m: m.pop("contract", None)),
        ("empty inputs, outputs and config", "manifest-minimal.json",
         lambda m: m.update(inputs={}, outputs={}, config={})),
        ("config with type object and additional properties", "manifest-minimal.json",
         lambda m: m.update(config={"type": "object", "additionalProperties": True, "properties": {}})),
        ("format path without a type", "manifest-minimal.json",
         lambda m: m.update(config={"properties": {"data": {"format": "path"}}})),
        ("integral float as a count", "manifest-minimal.json",
         lambda m: m.update(config={"properties": {"s": {"type": "string", "minLength": 2.0}}})),
        ("names with digits, - and _", "manifest-minimal.json",
         lambda m: m.update(name="a-1_b", inputs={"in_2": "X"}, outputs={"out-3": {"type": "Y"}})),
    ],
    "request": [
        ("largest seed", "request.json", lambda r: r.update(seed=2**64 - 1)),
        ("integral float seed", "request.json", lambda r: r.update(seed=7.0)),
        ("unwired optional input", "request.json", lambda r: r["inputs"].update(extra=[])),
        ("no outputs", "request.json", lambda r: r.update(outputs={})),
        ("unicode in paths", "request.json",
         lambda r: r["outputs"]["table"].update(path="/home/zoë/out/table")),
    ],
    "response": [
        ("output without properties", "response-minimal.json", lambda r: r.update(outputs={"table": {}})),
        ("error status with outputs", "response-error.json",
         lambda r: r.update(outputs={"table": {"properties": {"partial": True}}})),
        ("negative and integer metrics", "response-minimal.json", lambda r: r.update(metrics={"a": -1, "b": 0.5})),
        ("empty message", "response-minimal.json", lambda r: r.update(message="")),
    ],
}


@pytest.mark.parametrize(
    "kind,base,change",
    [(kind, base, change) for kind, cases in GOOD_VARIANTS.items() for _, base, change in cases],
    ids=[kind + ": " + label for kind, cases in GOOD_VARIANTS.items() for label, _, _ in cases])
def test_good_variants_pass(kind, base, change):
    document = copy.deepcopy(example(base))
    change(document)
    validator(kind).validate(document)


# ---- Bad documents ---------------------------------------------------------------------------

def delete(*path):
    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


def put(*path_and_value):
    *path, value = path_and_value

    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


BAD = {
    "response": [
        ("missing status", "response-ok.json", delete("status")),
        ("status not ok or error", "response-ok.json", put("status", "OK")),
        ("status not a string", "response-ok.json", put("status", True)),
        ("unknown top-level key", "response-ok.json", put("artifacts", {})),
        ("metric is a string", "response-ok.json", put("metrics", "mean", "0.5")),
        ("metric is a boolean", "response-ok.json", put("metrics", "mean", True)),
        ("metric is null", "response-ok.json", put("metrics", "mean", None)),
        ("metrics not an object", "response-ok.json", put("metrics", [1, 2])),
        ("property value is an object", "response-ok.json", put("outputs", "table", "properties", "rows", {"n": 1})),
        ("property value is an array", "response-ok.json", put("outputs", "table", "properties", "rows", [1])),
        ("property value is null", "response-ok.json", put("outputs", "table", "properties", "rows", None)),
        ("properties not an object", "response-ok.json", put("outputs", "table", "properties", [])),
        ("unknown key in an output", "response-ok.json", put("outputs", "table", "path", "/tmp/x")),
        ("output entry not an object", "response-ok.json", put("outputs", "table", 3)),
        ("output name not a name", "response-ok.json", put("outputs", "2table", {})),
        ("message is null", "response-error.json", put("message", None)),
        ("message is a number", "response-error.json", put("message", 1)),
    ],
    "request": [
        ("contract 2", "request.json", put("contract", 2)),
        ("contract as a string", "request.json", put("contract", "1")),
        ("missing seed", "request.json", delete("seed")),
        ("negative seed", "request.json", put("seed", -1)),
        ("fractional seed", "request.json", put("seed", 1.5)),
        ("seed above 64 bits", "request.json", put("seed", 2**64)),
        ("unknown top-level key", "request.json", put("workspace", "/tmp")),
        ("missing cache key", "request.json", delete("step", "cache_key")),
        ("digest without prefix", "request.json", put("step", "bundle_digest", "ab" * 32)),
        ("digest in upper case", "request.json", put("step", "bundle_digest", "sha256:" + "AB" * 32)),
        ("digest too short", "request.json", put("inputs", "table", 0, "digest", "sha256:abc")),
        ("relative output path", "request.json", put("outputs", "table", "path", "out/table")),
        ("relative scratch", "request.json", put("scratch", "scratch")),
        ("input not a list", "request.json", lambda r: r["inputs"].update(table=r["inputs"]["table"][0])),
        ("input property is an object", "request.json", put("inputs", "table", 0, "properties", "rows", {})),
        ("input without properties", "request.json", delete("inputs", "table", 0, "properties")),
        ("output without type", "request.json", delete("outputs", "table", "type")),
        ("config not an object", "request.json", put("config", [])),
        ("run without id", "request.json", delete("run", "id")),
    ],
    "manifest": [
        ("contract 2", "manifest-full.json", put("contract", 2)),
        ("contract 0", "manifest-full.json", put("contract", 0)),
        ("contract as a string", "manifest-full.json", put("contract", "1")),
        ("contract true", "manifest-full.json", put("contract", True)),
        ("missing name", "manifest-full.json", delete("name")),
        ("missing version", "manifest-full.json", delete("version")),
        ("missing entrypoint", "manifest-full.json", delete("entrypoint")),
        ("unknown key", "manifest-full.json", put("image", "python:3.12")),
        ("name starts with a digit", "manifest-full.json", put("name", "2fast")),
        ("name with a space", "manifest-full.json", put("name", "my step")),
        ("name with a dot", "manifest-full.json", put("name", "my.step")),
        ("non-ASCII name", "manifest-full.json", put("name", "café")),
        ("name too long", "manifest-full.json", put("name", "a" * 129)),
        ("empty version", "manifest-full.json", put("version", "")),
        ("empty entrypoint", "manifest-full.json", put("entrypoint", "")),
        ("args not a list", "manifest-full.json", put("args", "main.py")),
        ("boolean argument", "manifest-full.json", put("args", [True])),
        ("input field unknown", "manifest-full.json", put("inputs", "extra", "default", "x")),
        ("input without type", "manifest-full.json", put("inputs", "extra", {"optional": True})),
        ("input type empty", "manifest-full.json", put("inputs", "data", "")),
        ("input optional not a boolean", "manifest-full.json", put("inputs", "extra", "optional", "yes")),
        ("input name invalid", "manifest-full.json", put("inputs", "bad name", "Examples")),
        ("inputs not a mapping", "manifest-full.json", put("inputs", ["data"])),
        ("output with optional", "manifest-full.json", put("outputs", "stats", "optional", True)),
        ("output type not a string", "manifest-full.json", put("outputs", "examples", 3)),
        ("config keyword unsupported", "manifest-full.json", put("config", "oneOf", [])),
        ("config type not object", "manifest-full.json", put("config", "type", "array")),
        ("config additionalProperties not boolean", "manifest-full.json", put("config", "additionalProperties", {})),
        ("config required not a list", "manifest-full.json", put("config", "required", "vocabulary")),
        ("property keyword unsupported", "manifest-full.json", put("config", "properties", "scale", "pattern", "x")),
        ("property type unknown", "manifest-full.json", put("config", "properties", "scale", "type", "float")),
        ("property schema not a mapping", "manifest-full.json", put("config", "properties", "scale", "number")),
        ("format path on a number", "manifest-full.json", put("config", "properties", "scale", "format", "path")),
        ("format other than path", "manifest-full.json", put("config", "properties", "vocabulary", "format", "uri")),
        ("negative minLength", "manifest-full.json", put("config", "properties", "method", "minLength", -1)),
        ("fractional maxItems", "manifest-full.json", put("config", "properties", "columns", "maxItems", 1.5)),
        ("minimum not a number", "manifest-full.json", put("config", "properties", "scale", "minimum", "0")),
        ("empty enum", "manifest-full.json", put("config", "properties", "method", "enum", [])),
        ("bad items schema", "manifest-full.json", put("config", "properties", "columns", "items", {"type": "text"})),
        ("reserved env variable", "manifest-full.json", put("env", ["PATH"])),
        ("reserved ZENML variable", "manifest-full.json", put("env", ["ZENML_BUNDLE_DIR"])),
        ("reserved Python variable", "manifest-full.json", put("env", ["PYTHONHASHSEED"])),
        ("env name with a dash", "manifest-full.json", put("env", ["MY-TOKEN"])),
        ("env name twice", "manifest-full.json", put("env", ["A", "A"])),
        ("env not a list", "manifest-full.json", put("env", "MY_TOKEN")),
        ("zero timeout", "manifest-full.json", put("timeout", 0)),
        ("timeout as a string", "manifest-full.json", put("timeout", "600")),
    ],
}


@pytest.mark.parametrize(
    "kind,base,change",
    [(kind, base, change) for kind, cases in BAD.items() for _, base, change in cases],
    ids=[kind + ": " + label for kind, cases in BAD.items() for label, _, _ in cases])
def test_bad_documents_are_rejected(kind, base, change):
    document = copy.deepcopy(example(base))
    validator(kind).validate(document)  # the base is good...
    change(document)
    errors = list(validator(kind).iter_errors(document))
    assert errors, "expected the %s schema to reject %s" % (kind, json.dumps(document)[:300])


# ---- The examples in SPEC.md -----------------------------------------------------------------

def spec_json_blocks():
    with open(os.path.join(PROTOCOL_DIR, "SPEC.md"), encoding="utf-8") as handle:
        text = handle.read()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_spec_examples_are_valid():
    checked = {"request": 0, "response": 0}
    for block in spec_json_blocks():
        if "contract" in block and "pipeline" in block:
            validator("request").validate(block)
            assert block == example("request.json"), "SPEC.md's request example should be examples/request.json"
            checked["request"] += 1
        elif "status" in block:
            validator("response").validate(block)
            checked["response"] += 1
    assert checked == {"request": 1, "response": 2}


def test_spec_yaml_manifest_example_is_valid():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(PROTOCOL_DIR, "SPEC.md"), encoding="utf-8") as handle:
        text = handle.read()
    manifests = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    full = [m for m in manifests if isinstance(m, dict) and "name" in m and "entrypoint" in m]
    assert len(full) == 1
    validator("manifest").validate(full[0])
