"""csv-source through the real zenml-run: types, missing values, edge cases, the data version."""

import os

from conftest import PENGUINS_CSV, penguin_rows, read_split


def source(path, **config):
    return {"data": {"uses": "csv-source", "config": dict(path=path, **config)}}


def test_penguins_rows_types_and_missing_values(shared_workspace):
    ws = shared_workspace
    result = ws.run(ws.pipeline(source(PENGUINS_CSV)))
    properties = result.step("data")
    examples = read_split(result.path("data", "examples"))
    expected = penguin_rows()
    assert len(examples) == len(expected) == 344
    numeric = {"bill_length_mm": float, "bill_depth_mm": float, "flipper_length_mm": int, "body_mass_g": int,
               "year": int}
    for got, row in zip(examples, expected):
        for column, text in row.items():
            if text == "NA":
                assert column not in got, "a missing value must leave the feature out"
            elif column in numeric:
                assert abs(got[column] - numeric[column](text)) < 1e-4 * max(1.0, abs(float(text)))
                assert isinstance(got[column], numeric[column])
            else:
                assert got[column] == text
    assert properties["state"] == "done"


def test_output_properties_list_features_with_types(shared_workspace):
    ws = shared_workspace
    result = ws.run(ws.pipeline(source(PENGUINS_CSV)))
    import subprocess, json
    shown = json.loads(subprocess.run([ws.binary, "artifacts", "show", result.digest("data", "examples"), "--json"],
                                      cwd=ws.root, capture_output=True, text=True, check=True).stdout)
    text = json.dumps(shown)
    assert "species:STRING,island:STRING,bill_length_mm:FLOAT,bill_depth_mm:FLOAT,flipper_length_mm:INT," \
           "body_mass_g:INT,sex:STRING,year:INT" in text
    assert '"records" : 344' in text or '"records": 344' in text


def test_header_only_csv_gives_an_empty_snapshot(workspace):
    path = workspace.write_csv("empty.csv", [["a", "b"]])
    result = workspace.run(workspace.pipeline({
        **source(path),
        "statistics": {"uses": "statistics", "inputs": {"examples": "data.examples"}},
    }))
    assert read_split(result.path("data", "examples")) == []
    statistics = result.json("statistics", "statistics", "statistics.json")
    assert statistics["datasets"] == [{"name": "all", "num_examples": 0, "features": []}]


def test_empty_file_fails_with_a_clear_message(workspace):
    path = workspace.write("nothing.csv", "")
    result = workspace.run(workspace.pipeline(source(path)), expect_ok=False)
    assert result.returncode == 1
    assert "needs at least a header row" in result.stdout + result.stderr


def test_all_missing_column_is_left_out_and_reported(workspace):
    path = workspace.write_csv("gaps.csv", [["x", "empty", "label"], ["1", "", "a"], ["2", "NA", "b"], ["3", "NaN", "a"]])
    result = workspace.run(workspace.pipeline(source(path)))
    rows = read_split(result.path("data", "examples"))
    assert rows == [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}, {"x": 3, "label": "a"}]
    log = open(os.path.join(workspace.root, ".zenml", "logs", result.document["run"]["run_id"], "data.log")).read()
    assert "empty" in log and "no value in any row" in log


def test_non_numeric_value_makes_the_column_a_string_by_default(workspace):
    path = workspace.write_csv("mixed.csv", [["n", "m"], ["1", "1.5"], ["2", "oops"], ["3", "2"]])
    result = workspace.run(workspace.pipeline(source(path)))
    rows = read_split(result.path("data", "examples"))
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert [r["m"] for r in rows] == ["1.5", "oops", "2"]


def test_non_numeric_value_is_an_error_when_configured(workspace):
    path = workspace.write_csv("mixed.csv", [["n", "m"], ["1", "1.5"], ["2", "oops"], ["3", "2"]])
    result = workspace.run(workspace.pipeline(source(path, on_type_mismatch="error")), expect_ok=False)
    assert result.returncode == 1
    assert "line 3" in result.stdout + result.stderr and "'oops'" in result.stdout + result.stderr
    # Also when the text comes first; a column of text only is fine.
    path = workspace.write_csv("first.csv", [["n", "m", "s"], ["1", "n/a", "x"], ["2", "2.5", "y"]])
    result = workspace.run(workspace.pipeline(source(path, on_type_mismatch="error")), expect_ok=False)
    assert "line 2: column 'm' holds 'n/a'" in result.stdout
    # A forced type settles it.
    result = workspace.run(workspace.pipeline(source(path, on_type_mismatch="error", column_types={"m": "STRING"})))
    assert [row["m"] for row in read_split(result.path("data", "examples"))] == ["n/a", "2.5"]


def test_custom_missing_values_and_forced_types(workspace):
    path = workspace.write_csv("custom.csv", [["id", "v"], ["001", "?"], ["002", "4"]])
    result = workspace.run(workspace.pipeline(source(path, missing_values=["?"], column_types={"id": "STRING"})))
    assert read_split(result.path("data", "examples")) == [{"id": "001"}, {"id": "002", "v": 4}]


def test_ragged_row_fails_naming_the_line(workspace):
    path = workspace.write("ragged.csv", "a,b\n1,2\n3\n")
    result = workspace.run(workspace.pipeline(source(path)), expect_ok=False)
    assert "line 3 has 1 fields but the header has 2" in result.stdout + result.stderr


def test_the_csv_content_is_the_data_version(workspace):
    path = workspace.write_csv("data.csv", [["x", "y"], ["1", "a"], ["2", "b"]])
    pipeline = workspace.pipeline(source(path))
    first = workspace.run(pipeline)
    again = workspace.run(pipeline)
    assert again.state("data") == "cached"
    assert again.digest("data", "examples") == first.digest("data", "examples")

    workspace.write_csv("data.csv", [["x", "y"], ["1", "a"], ["2", "c"]])
    edited = workspace.run(pipeline)
    assert edited.state("data") == "done"
    assert edited.digest("data", "examples") != first.digest("data", "examples")

    # The same bytes under another name are the same data version: cached.
    copy = workspace.write_csv("copy.csv", [["x", "y"], ["1", "a"], ["2", "c"]])
    moved = workspace.run(workspace.pipeline(source(copy)))
    assert moved.state("data") == "cached"
    assert moved.digest("data", "examples") == edited.digest("data", "examples")


def test_records_are_the_sdk_serialization(workspace):
    """csv-source encodes Examples itself (faster); the bytes must be the SDK's (TensorFlow's)."""
    from zenml_step import Example, read_records

    rows = [["z", "a", "i", "f", "s"],
            ["x", "1", "-5", "0.1", "héllo"], ["y", "NA", "9223372036854775807", "-3.5e10", ""],
            ["x", "2", "-9223372036854775808", "1e-30", "a,b"], ["", "3", "0", "NaN", "x" * 200]]
    path = workspace.write_csv("kinds.csv", rows)
    result = workspace.run(workspace.pipeline(source(path)))
    records = list(read_records(result.path("data", "examples")))
    expected = [
        {"z": "x", "a": 1, "i": -5, "f": 0.1, "s": "héllo"},
        {"z": "y", "i": 9223372036854775807, "f": -3.5e10},
        {"z": "x", "a": 2, "i": -9223372036854775808, "f": 1e-30, "s": "a,b"},
        {"a": 3, "i": 0, "s": "x" * 200},
    ]
    assert records == [Example.from_dict(row).serialize() for row in expected]


def test_a_float_beyond_float32_fails_clearly(workspace):
    path = workspace.write_csv("huge.csv", [["f"], ["1.5"], ["1e300"]])
    result = workspace.run(workspace.pipeline(source(path)), expect_ok=False)
    assert "line 3" in result.stdout and "float32" in result.stdout
