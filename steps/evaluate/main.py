"""evaluate: accuracy, per-class precision/recall/support and the confusion matrix of a Model on
one split, optionally against a baseline Model, deciding whether the model is blessed.

Blessed when every check that is configured passes: accuracy >= `threshold` (if set) and, with a
baseline model, accuracy >= baseline accuracy - `tolerance`. With neither, the model is blessed.
Works for both model kinds (softmax from train-softmax, gaussian_nb from train-nb).
"""

import os

from zenml_step import fail, read_request, write_response
from zenml_ml import example_splits, labeled_examples, load_model, model_inputs, num, predict, split_dir, write_json


def main():
    request = read_request()
    config = request["config"]
    split = config.get("split", "eval")
    threshold = config.get("threshold")
    tolerance = config.get("tolerance", 0.0)
    model = load_model(request["inputs"]["model"][0]["path"])
    baselines = request["inputs"].get("baseline") or []
    baseline = load_model(baselines[0]["path"]) if baselines else None
    label = model["label"]
    if baseline is not None and baseline["label"] != label:
        fail("the baseline model predicts %r but the model predicts %r; compare models of the same label"
             % (baseline["label"], label))
    source = request["inputs"]["examples"][0]["path"]
    names = [name for name, _ in example_splits(source)]
    if split not in names and names == ["all"]:
        split = "all"  # unsplit examples
    directory = split_dir(source, split)

    pairs = {}  # (actual, predicted) -> count
    baseline_correct = 0
    examples = 0
    for example, actual in labeled_examples(directory, label):
        predicted = model["classes"][predict(model, model_inputs(model, example))]
        pairs[(actual, predicted)] = pairs.get((actual, predicted), 0) + 1
        if baseline is not None:
            baseline_correct += baseline["classes"][predict(baseline, model_inputs(baseline, example))] == actual
        examples += 1
    if examples == 0:
        fail("the %s split has no example with a label %r: nothing to evaluate" % (split, label))

    labels = sorted(set(model["classes"]) | {actual for actual, _ in pairs})
    rows = [[pairs.get((actual, predicted), 0) for predicted in labels] for actual in labels]
    correct = sum(rows[i][i] for i in range(len(labels)))
    accuracy = correct / examples
    per_class = []
    for index, name in enumerate(labels):
        support = sum(rows[index])
        predicted = sum(row[index] for row in rows)
        per_class.append({
            "class": name,
            "precision": num(rows[index][index] / predicted) if predicted else 0,
            "recall": num(rows[index][index] / support) if support else 0,
            "support": support,
        })
    baseline_accuracy = baseline_correct / examples if baseline is not None else None
    blessed = True
    reasons = []
    if threshold is not None and accuracy < threshold:
        blessed = False
        reasons.append("accuracy %.4f is below the threshold %g" % (accuracy, threshold))
    if baseline_accuracy is not None and accuracy < baseline_accuracy - tolerance:
        blessed = False
        reasons.append("accuracy %.4f is below the baseline's %.4f (tolerance %g)" % (accuracy, baseline_accuracy, tolerance))

    document = {
        "format": "zenml.evaluation/1", "label": label, "split": split, "model_kind": model["kind"],
        "examples": examples, "accuracy": num(accuracy), "classes": labels, "per_class": per_class,
        "confusion_matrix": {"labels": labels, "rows": rows},
        "baseline": {"accuracy": num(baseline_accuracy), "kind": baseline["kind"]} if baseline is not None else None,
        "threshold": threshold, "blessed": blessed,
    }
    write_json(os.path.join(request["outputs"]["evaluation"]["path"], "evaluation.json"), document)
    message = "accuracy %.4f on %d %s examples: %s" % (accuracy, examples, split,
                                                       "blessed" if blessed else "not blessed (%s)" % "; ".join(reasons))
    metrics = {"accuracy": accuracy, "examples": examples, "blessed": 1 if blessed else 0}
    if baseline_accuracy is not None:
        metrics["baseline_accuracy"] = baseline_accuracy
    properties = {"accuracy": num(accuracy), "blessed": blessed, "examples": examples, "model_kind": model["kind"]}
    write_response(outputs={"evaluation": properties}, metrics=metrics, message=message)


if __name__ == "__main__":
    main()
