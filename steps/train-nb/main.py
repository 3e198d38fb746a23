"""train-nb: a naive Bayes classifier, Gaussian for numbers and categorical for strings.

The same inputs and output as train-softmax (split Examples and their statistics in, a Model
out), so the two trainers are interchangeable in a pipeline. Training is one streaming pass over
the train split (per class: counts, Welford means and variances, value counts); a second pass
measures the train accuracy. Missing values carry no evidence, neither in training nor in
prediction.
"""

import math
import os

from zenml_step import fail, log, read_request, write_response
from zenml_ml import (STRING, dataset, labeled_examples, load_statistics, model_inputs, num, predict, scalar,
                      split_dir, write_json)


def main():
    request = read_request()
    config = request["config"]
    label = config["label"]
    split = config.get("split", "train")
    alpha = config.get("alpha", 1.0)
    smoothing = config.get("var_smoothing", 1e-9)
    max_vocabulary = config.get("max_vocabulary", 50)
    statistics = load_statistics(request["inputs"]["statistics"][0]["path"])
    names = [d["name"] for d in statistics["datasets"]]
    if split not in names and names == ["all"]:
        split = "all"
    stats = dataset(statistics, split)
    wanted = config.get("features") or []

    features = []
    for feature in stats["features"]:
        if feature["name"] == label or (wanted and feature["name"] not in wanted):
            continue
        if feature["count"] == 0:
            log("skipping %s: no value in the %s split" % (feature["name"], split))
            continue
        if feature["type"] == STRING:
            vocabulary = sorted(top["value"] for top in feature["string"]["top_values"][:max_vocabulary])
            features.append({"name": feature["name"], "type": "categorical", "vocabulary": vocabulary})
        else:
            features.append({"name": feature["name"], "type": "numeric"})
    if wanted and len(features) != len(wanted):
        fail("config 'features' lists %d features but only %d are in the %s statistics with values (and are not "
             "the label)" % (len(wanted), len(features), split))
    if not features:
        fail("no input features: the %s statistics have no feature besides the label %r" % (split, label))

    directory = split_dir(request["inputs"]["examples"][0]["path"], split)
    per_class = {}  # class -> {"n": count, feature name -> accumulator}
    for example, target in labeled_examples(directory, label):
        entry = per_class.get(target)
        if entry is None:
            entry = per_class[target] = {"n": 0}
            for feature in features:
                entry[feature["name"]] = [0, 0.0, 0.0] if feature["type"] == "numeric" else [0, {}]
        entry["n"] += 1
        for feature in features:
            value = scalar(example.get(feature["name"]))
            if value is None:
                continue
            accumulator = entry[feature["name"]]
            if feature["type"] == "numeric":
                if isinstance(value, str):
                    continue
                accumulator[0] += 1
                delta = value - accumulator[1]
                accumulator[1] += delta / accumulator[0]
                accumulator[2] += delta * (value - accumulator[1])
            else:
                accumulator[0] += 1  # present values, the denominator
                counts = accumulator[1]
                key = str(value)
                counts[key] = counts.get(key, 0) + 1
    if not per_class:
        fail("the %s split has no example with a label %r" % (split, label))
    classes = sorted(per_class)
    if len(classes) == 1:
        log("warning: the label has a single class (%r); the model always predicts it" % classes[0])
    total = sum(per_class[c]["n"] for c in classes)

    # Variance floor as scikit-learn's: a fraction of the largest variance, so that a feature
    # constant within a class does not give infinite densities.
    largest = max([acc[2] / acc[0] for c in classes for f in features if f["type"] == "numeric"
                   for acc in [per_class[c][f["name"]]] if acc[0] > 0] or [1.0])
    floor = max(smoothing * largest, 1e-12)
    for feature in features:
        feature["per_class"] = []
        for name in classes:
            accumulator = per_class[name][feature["name"]]
            if feature["type"] == "numeric":
                count, mean, m2 = accumulator
                variance = (m2 / count if count else largest) + floor
                feature["per_class"].append({"mean": num(mean), "var": num(variance)})
            else:
                present, counts = accumulator
                denominator = present + alpha * (len(feature["vocabulary"]) + 1)
                feature["per_class"].append({
                    "log_probs": {value: num(math.log((counts.get(value, 0) + alpha) / denominator))
                                  for value in feature["vocabulary"]},
                    "log_unknown": num(math.log(alpha / denominator)),
                })
    model = {
        "format": "zenml.model/1", "kind": "gaussian_nb", "label": label, "classes": classes,
        "features": features,
        "log_priors": [num(math.log(per_class[c]["n"] / total)) for c in classes],
        "train_examples": total, "alpha": alpha, "var_smoothing": smoothing,
    }
    correct = 0
    for example, target in labeled_examples(directory, label, quiet=True):
        correct += classes[predict(model, model_inputs(model, example))] == target
    accuracy = correct / total
    model["train_accuracy"] = num(accuracy)
    write_json(os.path.join(request["outputs"]["model"]["path"], "model.json"), model)
    write_response(outputs={"model": {"kind": "gaussian_nb", "label": label, "classes": len(classes),
                                      "inputs": len(features), "train_accuracy": num(accuracy)}},
                   metrics={"train_accuracy": accuracy, "train_examples": total},
                   message="naive Bayes on %d examples, %d features, %d classes: train accuracy %.4f"
                   % (total, len(features), len(classes), accuracy))


if __name__ == "__main__":
    main()
