"""Tests for the Python step helper, protocol/python/zenml_step.py."""

import ast
import json
import os
import subprocess
import sys

import jsonschema
import pytest

PROTOCOL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SDK_DIR = os.path.join(PROTOCOL_DIR, "python")
sys.path.insert(0, SDK_DIR)

import zenml_step  # noqa: E402


def load(name):
    with open(os.path.join(PROTOCOL_DIR, name), encoding="utf-8") as handle:
        return json.load(handle)


RESPONSE_SCHEMA = load("schemas/response.schema.json")
REQUEST = load("examples/request.json")

STEP = """
import sys
sys.path.insert(0, %r)
from zenml_step import read_request, write_response, fail, log
request = read_request()
log("config is", request["config"])
if request["config"].get("fail"):
    fail("asked to fail")
write_response(outputs={"table": {"rows": 3, "name": "t", "ok": True, "scale": 0.5}}, metrics={"mean": 1.25})
""" % SDK_DIR


def run(request_text):
    return subprocess.run([sys.executable, "-c", STEP], input=request_text.encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"})


def test_a_step_using_the_helper_answers_a_valid_response():
    result = run(json.dumps(REQUEST))
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    jsonschema.validate(response, RESPONSE_SCHEMA)
    assert response == {"status": "ok", "outputs": {"table": {"properties": {"rows": 3, "name": "t", "ok": True,
                                                                                "scale": 0.5}}},
                        "metrics": {"mean": 1.25}}
    assert b"config is" in result.stderr


def test_escaped_slashes_are_fine():
    result = run(json.dumps(REQUEST).replace("/", "\\/"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("contract", [2, 0, "1", True, 1.0, None])
def test_other_contract_versions_exit_with_a_clear_message(contract):
    request = dict(REQUEST, contract=contract)
    result = run(json.dumps(request))
    assert result.returncode == zenml_step.EXIT_BAD_REQUEST
    assert result.stdout == b""
    assert b"contract version 1" in result.stderr
    assert json.dumps(contract).encode() in result.stderr


def test_missing_contract_is_refused():
    request = dict(REQUEST)
    del request["contract"]
    result = run(json.dumps(request))
    assert result.returncode == zenml_step.EXIT_BAD_REQUEST


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"contract": 1'])
def test_garbage_on_stdin_is_refused(text):
    result = run(text)
    assert result.returncode == zenml_step.EXIT_BAD_REQUEST
    assert result.stdout == b""
    assert b"request" in result.stderr


def test_fail_prints_an_error_response_and_exits_1():
    request = json.loads(json.dumps(REQUEST))
    request["config"]["fail"] = True
    result = run(json.dumps(request))
    assert result.returncode == 1
    response = json.loads(result.stdout)
    jsonschema.validate(response, RESPONSE_SCHEMA)
    assert response == {"status": "error", "message": "asked to fail"}
    assert b"asked to fail" in result.stderr


@pytest.mark.parametrize("kwargs", [
    {"status": "OK"},
    {"outputs": {"table": {"rows": [1, 2]}}},
    {"outputs": {"table": {"rows": None}}},
    {"outputs": {"table": 3}},
    {"metrics": {"mean": "1.5"}},
    {"metrics": {"flag": True}},
    {"metrics": {"mean": float("nan")}},
])
def test_write_response_refuses_what_the_host_would_reject(kwargs, capsys):
    with pytest.raises(ValueError):
        zenml_step.write_response(**kwargs)
    assert capsys.readouterr().out == ""


def test_write_response_prints_one_line(capsys):
    zenml_step.write_response(message="done")
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"status": "ok", "message": "done"}


def test_read_request_from_a_stream(tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    with open(path) as stream:
        assert zenml_step.read_request(stream) == REQUEST


def test_sdk_parses_as_python_3_9():
    with open(os.path.join(SDK_DIR, "zenml_step.py"), encoding="utf-8") as handle:
        ast.parse(handle.read(), feature_version=(3, 9))
