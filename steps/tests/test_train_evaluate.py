"""train-softmax (C), train-nb (Python) and evaluate through the real zenml-run."""

import json
import os

import pytest

from conftest import PENGUINS_CSV, read_split


def pipeline(ws, path, trainer="train-softmax", train_config=None, evaluate_config=None, baseline=None,
             evaluate_split="eval"):
    steps = {
        "data": {"uses": "csv-source", "config": {"path": path}},
        "split": {"uses": "split", "config": {"seed": 1}, "inputs": {"examples": "data.examples"}},
        "statistics": {"uses": "statistics", "inputs": {"examples": "split.examples"}},
        "train": {"uses": trainer, "config": dict({"label": "species"}, **(train_config or {})),
                  "inputs": {"examples": "split.examples", "statistics": "statistics.statistics"}},
        "evaluate": {"uses": "evaluate", "config": dict({"split": evaluate_split}, **(evaluate_config or {})),
                     "inputs": {"examples": "split.examples", "model": "train.model"}},
    }
    if baseline:
        steps["baseline"] = {"uses": baseline, "config": {"label": "species"},
                             "inputs": {"examples": "split.examples", "statistics": "statistics.statistics"}}
        steps["evaluate"]["inputs"]["baseline"] = "baseline.model"
    return ws.pipeline(steps)


@pytest.mark.parametrize("trainer,kind", [("train-softmax", "softmax"), ("train-nb", "gaussian_nb")])
def test_trainers_learn_the_penguins(shared_workspace, trainer, kind):
    ws = shared_workspace
    result = ws.run(pipeline(ws, PENGUINS_CSV, trainer))
    model = result.json("train", "model", "model.json")
    assert model["format"] == "zenml.model/1" and model["kind"] == kind and model["label"] == "species"
    assert model["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert {f["name"] for f in model["features"]} == {"island", "bill_length_mm", "bill_depth_mm",
                                                      "flipper_length_mm", "body_mass_g", "sex", "year"}
    evaluation = result.json("evaluate", "evaluation", "evaluation.json")
    assert evaluation["format"] == "zenml.evaluation/1"
    assert evaluation["accuracy"] > 0.9
    assert evaluation["blessed"] is True and evaluation["baseline"] is None and evaluation["threshold"] is None

    # The numbers agree with each other and with the eval split itself.
    eval_rows = read_split(os.path.join(result.path("split", "examples"), "eval"))
    matrix = evaluation["confusion_matrix"]
    assert matrix["labels"] == evaluation["classes"] == model["classes"]
    assert sum(map(sum, matrix["rows"])) == evaluation["examples"] == len(eval_rows)
    for index, entry in enumerate(evaluation["per_class"]):
        assert entry["support"] == sum(1 for row in eval_rows if row["species"] == entry["class"])
        assert entry["support"] == sum(matrix["rows"][index])
        predicted = sum(row[index] for row in matrix["rows"])
        assert entry["precision"] == pytest.approx(matrix["rows"][index][index] / predicted, abs=1e-8)
        assert entry["recall"] == pytest.approx(matrix["rows"][index][index] / entry["support"], abs=1e-8)
    correct = sum(matrix["rows"][i][i] for i in range(len(matrix["labels"])))
    assert evaluation["accuracy"] == pytest.approx(correct / evaluation["examples"], abs=1e-8)
    assert result.step("evaluate")["state"] in ("done", "cached")


def test_python_evaluation_of_the_c_model_matches_the_c_trainer(shared_workspace):
    """evaluate (Python) re-implements softmax prediction: on the train split it must reach
    exactly the train accuracy the C trainer measured."""
    ws = shared_workspace
    result = ws.run(pipeline(ws, PENGUINS_CSV, "train-softmax", evaluate_split="train"))
    model = result.json("train", "model", "model.json")
    evaluation = result.json("evaluate", "evaluation", "evaluation.json")
    assert evaluation["accuracy"] == pytest.approx(model["train_accuracy"], abs=1e-8)
    assert evaluation["examples"] == model["train_examples"]


@pytest.mark.parametrize("trainer", ["train-softmax", "train-nb"])
def test_training_is_deterministic(shared_workspace, trainer):
    ws = shared_workspace
    path = pipeline(ws, PENGUINS_CSV, trainer)
    first = ws.run(path)
    again = ws.run(path, "--no-cache", "--only", "train")
    assert again.state("train") == "done"
    assert again.digest("train", "model") == first.digest("train", "model")


def test_softmax_streams_through_a_shuffle_buffer_smaller_than_the_split(shared_workspace):
    """With more train rows than `shuffle_buffer`, train-softmax reads its scratch file of encoded
    rows every epoch through a window of that many rows: a different (still seeded) order than
    the in-memory shuffle, the same kind of model, deterministic, and evaluate agrees with it."""
    ws = shared_workspace
    path = pipeline(ws, PENGUINS_CSV, "train-softmax", train_config={"shuffle_buffer": 16}, evaluate_split="train")
    first = ws.run(path)
    model = first.json("train", "model", "model.json")
    in_memory = ws.run(pipeline(ws, PENGUINS_CSV, "train-softmax", evaluate_split="train")).json("train", "model", "model.json")
    assert model["train_examples"] == in_memory["train_examples"] > 16
    assert model["weights"] != in_memory["weights"]  # another order of the mini-batches
    assert model["train_accuracy"] > 0.9
    evaluation = first.json("evaluate", "evaluation", "evaluation.json")
    assert evaluation["accuracy"] == pytest.approx(model["train_accuracy"], abs=1e-8)
    again = ws.run(path, "--no-cache", "--only", "train")
    assert again.state("train") == "done"
    assert again.digest("train", "model") == first.digest("train", "model")


def test_baseline_and_threshold_decide_the_blessing(shared_workspace):
    ws = shared_workspace
    weak = {"features": ["year"]}  # the year says little about the species
    result = ws.run(pipeline(ws, PENGUINS_CSV, "train-nb", train_config=weak,
                             evaluate_config={"threshold": 0.9}, baseline="train-softmax"))
    evaluation = result.json("evaluate", "evaluation", "evaluation.json")
    assert evaluation["threshold"] == 0.9
    assert evaluation["accuracy"] < 0.7 < evaluation["baseline"]["accuracy"]
    assert evaluation["blessed"] is False
    # Below the baseline but within the tolerance, and above the threshold: blessed.
    tolerant = ws.run(pipeline(ws, PENGUINS_CSV, "train-nb", train_config=weak,
                               evaluate_config={"threshold": 0.2, "tolerance": 1}, baseline="train-softmax"))
    assert tolerant.json("evaluate", "evaluation", "evaluation.json")["blessed"] is True
    # Above the threshold but worse than the baseline: not blessed.
    worse = ws.run(pipeline(ws, PENGUINS_CSV, "train-nb", train_config=weak,
                            evaluate_config={"threshold": 0.2}, baseline="train-softmax"))
    assert worse.json("evaluate", "evaluation", "evaluation.json")["blessed"] is False


@pytest.mark.parametrize("trainer", ["train-softmax", "train-nb"])
def test_single_class(workspace, trainer):
    rows = [["species", "x", "colour"]] + [["only", str(i), "red" if i % 2 else "blue"] for i in range(50)]
    path = workspace.write_csv("one.csv", rows)
    result = workspace.run(pipeline(workspace, path, trainer))
    model = result.json("train", "model", "model.json")
    assert model["classes"] == ["only"]
    evaluation = result.json("evaluate", "evaluation", "evaluation.json")
    assert evaluation["accuracy"] == 1
    assert evaluation["per_class"][0]["recall"] == 1
    assert evaluation["confusion_matrix"]["rows"] == [[evaluation["examples"]]]


def test_missing_label_column_fails_clearly(workspace):
    path = workspace.write_csv("nolabel.csv", [["x"]] + [[str(i)] for i in range(30)])
    result = workspace.run(pipeline(workspace, path), expect_ok=False)
    assert result.returncode == 1
    assert "no example with a label 'species'" in result.stdout + result.stderr


def test_model_features_can_be_chosen(shared_workspace):
    ws = shared_workspace
    result = ws.run(pipeline(ws, PENGUINS_CSV, "train-softmax",
                             train_config={"features": ["bill_length_mm", "flipper_length_mm", "island"]}))
    model = result.json("train", "model", "model.json")
    assert [f["name"] for f in model["features"]] == ["bill_length_mm", "flipper_length_mm", "island"]
    island = model["features"][2]
    assert island["type"] == "categorical" and island["vocabulary"] == ["Biscoe", "Dream", "Torgersen"]
    assert len(model["weights"]) == 3 and all(len(row) == 2 + 3 for row in model["weights"])
    json.dumps(model)  # plain JSON, no NaN
