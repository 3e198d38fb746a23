"""zenml_step: a tiny helper for writing zenml-run steps in Python.

It implements the step contract, version 1 (see protocol/SPEC.md), with the standard library
only (Python 3.9+). A step is a program that reads one JSON request on stdin, writes its
outputs into the directories the request names, and prints one JSON response on stdout:

    from zenml_step import read_request, write_response, fail, log

    request = read_request()                      # exits if the contract version is not 1
    rows = request["config"]["rows"]
    out_dir = request["outputs"]["table"]["path"]
    log("writing", rows, "rows to", out_dir)      # logs go to stderr, never stdout
    ...                                           # write files into out_dir
    write_response(outputs={"table": {"rows": rows}}, metrics={"seconds": 1.5})

Rules worth remembering (the host enforces them):

* stdout carries exactly one JSON object: the response. Use `log()` (stderr) for everything
  else; a stray `print()` makes the step fail.
* Every declared output directory must contain at least one file when the step succeeds, and
  nothing may be written next to the output directories.
* Input artifact directories are read-only.

A bundle must be self-contained: copy this file into the bundle folder (its digest then covers
it) rather than linking to it.
"""

import json
import math
import sys

__all__ = ["CONTRACT_VERSION", "read_request", "write_response", "fail", "log"]

#: The step contract version this helper speaks.
CONTRACT_VERSION = 1

#: Exit code for a request this helper cannot use (bad JSON, another contract version).
EXIT_BAD_REQUEST = 2


def log(*args):
    """Prints its arguments, like print(), to stderr: the step's log."""
    print(*args, file=sys.stderr, flush=True)


def read_request(stream=None):
    """Reads the request (one JSON object) from stdin and returns it as a dict.

    Exits with a message on stderr and exit code 2 when stdin is not a JSON object or when the
    request's `contract` is not 1: a step must never guess at a contract it does not know.
    """
    stream = sys.stdin if stream is None else stream
    text = stream.read()
    try:
        request = json.loads(text)
    except ValueError as error:
        _exit_bad_request("the request on stdin is not JSON (%s)" % error)
    if not isinstance(request, dict):
        _exit_bad_request("the request on stdin must be a JSON object, got %s" % type(request).__name__)
    contract = request.get("contract")
    # `type(...) is int` because True == 1 in Python.
    if type(contract) is not int or contract != CONTRACT_VERSION:
        _exit_bad_request(
            "this step speaks step contract version %d, but the request has contract %s; "
            "use a zenml-run that speaks version %d or update the step"
            % (CONTRACT_VERSION, json.dumps(contract), CONTRACT_VERSION))
    return request


def write_response(status="ok", outputs=None, metrics=None, message=None):
    """Prints the response on stdout.

    status   -- "ok" or "error".
    outputs  -- {output name: {property name: str | int | float | bool}}: properties recorded
                with each output artifact. Only declared outputs may appear.
    metrics  -- {metric name: int | float}: numbers recorded with the execution.
    message  -- a short text for people (required in spirit when status is "error").

    Raises ValueError for a response the host would reject, so that the mistake shows up in
    the step's own traceback rather than as a host error.
    """
    if status not in ("ok", "error"):
        raise ValueError('status must be "ok" or "error", not %r' % (status,))
    response = {"status": status}
    if outputs:
        entries = {}
        for name, properties in outputs.items():
            if not isinstance(properties, dict):
                raise ValueError("outputs[%r] must be a dict of properties" % (name,))
            for key, value in properties.items():
                if not _is_scalar(value):
                    raise ValueError(
                        "property %r of output %r must be a string, number or boolean, not %s"
                        % (key, name, type(value).__name__))
            entries[name] = {"properties": dict(properties)}
        response["outputs"] = entries
    if metrics:
        for key, value in metrics.items():
            if not _is_number(value):
                raise ValueError("metric %r must be a finite number, not %r" % (key, value))
        response["metrics"] = dict(metrics)
    if message is not None:
        response["message"] = str(message)
    sys.stdout.write(json.dumps(response, allow_nan=False) + "\n")
    sys.stdout.flush()


def fail(message, exit_code=1):
    """Reports a failure: logs the message, prints an error response, and exits (code 1)."""
    log("error:", message)
    write_response(status="error", message=message)
    sys.exit(exit_code)


def _exit_bad_request(message):
    log("error:", message)
    sys.exit(EXIT_BAD_REQUEST)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value):
    return isinstance(value, (str, bool)) or _is_number(value)
