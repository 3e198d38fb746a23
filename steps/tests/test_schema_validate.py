"""schema and validate through the real zenml-run: inference, each anomaly kind, drift."""

import os

import pytest

from conftest import PENGUINS_CSV

REFERENCE = [["kind", "size", "weight", "note"]] + \
    [["cat" if i % 3 else "dog", str(i % 7), "%.1f" % (1 + i / 10), "n%d" % i] for i in range(60)]


def pipeline(ws, reference_csv, current_csv, **validate_config):
    """Schema from the reference data; the current data's statistics validated against it,
    with the reference statistics as drift baseline."""
    return ws.pipeline({
        "ref": {"uses": "csv-source", "config": {"path": reference_csv}},
        "ref_stats": {"uses": "statistics", "inputs": {"examples": "ref.examples"}},
        "schema": {"uses": "schema", "config": {"split": "all"}, "inputs": {"statistics": "ref_stats.statistics"}},
        "cur": {"uses": "csv-source", "config": {"path": current_csv}},
        "cur_stats": {"uses": "statistics", "inputs": {"examples": "cur.examples"}},
        "validate": {"uses": "validate", "config": dict({"split": "all"}, **validate_config),
                     "inputs": {"statistics": "cur_stats.statistics", "schema": "schema.schema",
                                "baseline": "ref_stats.statistics"}},
    })


def anomalies(result):
    document = result.json("validate", "anomalies", "anomalies.json")
    assert document["format"] == "zenml.anomalies/1"
    return {(a["feature"], a["kind"]): a for a in document["anomalies"]}, document


def test_schema_inference(shared_workspace):
    ws = shared_workspace
    reference = ws.write_csv("reference.csv", REFERENCE)
    result = ws.run(pipeline(ws, reference, reference))
    schema = result.json("schema", "schema", "schema.json")
    assert schema["format"] == "zenml.schema/1"
    by_name = {f["name"]: f for f in schema["features"]}
    assert by_name["kind"]["type"] == "STRING" and by_name["kind"]["domain"] == {"values": ["cat", "dog"]}
    assert by_name["kind"]["presence"] == {"min_fraction": 1, "min_count": 1}
    assert by_name["kind"]["value_count"] == {"min": 1, "max": 1}
    assert by_name["size"]["type"] == "INT" and by_name["size"]["domain"] == {"min": 0, "max": 6}
    assert by_name["weight"]["type"] == "FLOAT" and by_name["weight"]["domain"] == {"min": 1, "max": 6.9}
    assert by_name["note"]["domain"] is None  # 60 distinct values: not categorical
    # The same data validates cleanly and has no drift.
    found, document = anomalies(result)
    assert found == {}
    assert {d["feature"]: d["distance"] for d in document["drift"]} == {"kind": 0, "note": 0}


def test_each_anomaly_kind(shared_workspace):
    ws = shared_workspace
    reference = ws.write_csv("reference.csv", REFERENCE)
    # kind: a new value (out of domain) and many more dogs (drift); size: now text (type change);
    # weight: mostly missing (presence drop); note: gone (missing feature); extra: new feature.
    current = [["kind", "size", "weight", "extra"]] + \
        [["dog" if i % 4 else "bird", "s%d" % i, "2.5" if i % 5 == 0 else "", "1"] for i in range(40)]
    result = ws.run(pipeline(ws, reference, ws.write_csv("current.csv", current), drift_threshold=0.2))
    found, document = anomalies(result)
    assert set(found) == {("kind", "out_of_domain"), ("kind", "drift"), ("size", "type_change"),
                          ("weight", "presence_drop"), ("note", "missing_feature"), ("extra", "new_feature")}
    assert "'bird' (10)" in found[("kind", "out_of_domain")]["description"]
    assert all(a["severity"] == "error" for a in found.values())
    drift = {d["feature"]: d for d in document["drift"]}
    # cat 40/60 -> 0, dog 20/60 -> 30/40, bird 0 -> 10/40: the largest difference is cat's, 2/3.
    assert drift["kind"]["distance"] == pytest.approx(40 / 60, abs=1e-5)
    assert drift["kind"]["threshold"] == 0.2
    assert result.step("validate")["state"] == "done"


def test_numeric_values_outside_the_range_are_a_warning(shared_workspace):
    ws = shared_workspace
    reference = ws.write_csv("reference.csv", REFERENCE)
    current = [["kind", "size", "weight", "note"], ["cat", "9", "1.5", "n1"], ["dog", "3", "2.5", "n2"]]
    result = ws.run(pipeline(ws, reference, ws.write_csv("range.csv", current), drift_threshold=1))
    found, _ = anomalies(result)
    assert set(found) == {("size", "out_of_domain")}
    assert found[("size", "out_of_domain")]["severity"] == "warning"


def test_fail_on_error_stops_the_pipeline(workspace):
    reference = workspace.write_csv("reference.csv", REFERENCE)
    current = workspace.write_csv("current.csv", [["kind"], ["bird"]])
    result = workspace.run(pipeline(workspace, reference, current, fail_on_error=True), expect_ok=False)
    assert result.returncode == 1
    assert "missing_feature" not in result.stdout  # the message is for people: it says what is wrong
    assert "outside the domain" in result.stdout + result.stderr


def test_schema_pbtxt_loads_as_tensorflow_metadata(shared_workspace):
    text_format = pytest.importorskip("google.protobuf.text_format")
    schema_pb2 = pytest.importorskip("tensorflow_metadata.proto.v0.schema_pb2")
    ws = shared_workspace
    result = ws.run(ws.pipeline({
        "data": {"uses": "csv-source", "config": {"path": PENGUINS_CSV}},
        "split": {"uses": "split", "inputs": {"examples": "data.examples"}},
        "statistics": {"uses": "statistics", "inputs": {"examples": "split.examples"}},
        "schema": {"uses": "schema", "inputs": {"statistics": "statistics.statistics"}},
    }))
    with open(os.path.join(result.path("schema", "schema"), "schema.pbtxt"), encoding="utf-8") as handle:
        schema = text_format.Parse(handle.read(), schema_pb2.Schema())
    by_name = {f.name: f for f in schema.feature}
    assert list(by_name["species"].string_domain.value) == ["Adelie", "Chinstrap", "Gentoo"]
    assert by_name["species"].type == schema_pb2.BYTES
    assert by_name["body_mass_g"].type == schema_pb2.INT and by_name["body_mass_g"].int_domain.min > 2000
    assert by_name["bill_length_mm"].float_domain.max > 50
    assert by_name["species"].presence.min_fraction == 1.0
