"""zenml_ml: the little the Python ML bundles of steps/ share.

Each bundle reaches this file through a relative symbolic link (`zenml_ml.py ->
../lib/zenml_ml.py`), which the host hashes and packs as the file's content. It holds only what
more than one bundle needs: where the splits of an Examples artifact are, how feature values
read, deterministic JSON and number formatting (steps/statistics, in Swift, writes the
same bytes), the protobuf text writer, the formats' loaders,
and the prediction of both model kinds (the Python trainer and `evaluate` must agree on it).
The formats themselves are documented in steps/README.md.
"""

import json
import math
import os

from zenml_step import fail, log, parse_shard_file_name, read_examples

#: Split folders in the order they are reported; other subfolders follow by name.
SPLIT_ORDER = ("train", "eval", "test")

#: The feature types of the statistics and schema formats.
INT, FLOAT, STRING = "INT", "FLOAT", "STRING"


# ---- Examples artifacts ----------------------------------------------------------------------

def _has_shards(directory):
    return any(parse_shard_file_name(name) is not None for name in os.listdir(directory))


def example_splits(path):
    """[(split name, directory)] of an Examples artifact: its subfolders holding shards
    (train, eval, test first), or [("all", path)] when the shards are at its top."""
    subfolders = [name for name in os.listdir(path)
                  if os.path.isdir(os.path.join(path, name)) and _has_shards(os.path.join(path, name))]
    if subfolders:
        ordered = [s for s in SPLIT_ORDER if s in subfolders] + sorted(s for s in subfolders if s not in SPLIT_ORDER)
        return [(name, os.path.join(path, name)) for name in ordered]
    if _has_shards(path):
        return [("all", path)]
    fail("%s holds no TFRecord shards (data-NNNNN-of-NNNNN.tfrecord[.gz]) and no split folders with them; "
         "wire an Examples artifact (csv-source or split output)" % path)


def split_dir(path, name):
    """The folder of split `name` of an Examples artifact, failing with the splits there are."""
    splits = dict(example_splits(path))
    if name not in splits:
        fail("the Examples artifact has no split %r (it has: %s); set the step's split config to one of them"
             % (name, ", ".join(splits)))
    return splits[name]


def scalar(feature):
    """The first value of a feature (bytes decoded as UTF-8), or None when it has none."""
    if feature is None or not feature.values:
        return None
    value = feature.values[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def labeled_examples(directory, label, quiet=False):
    """(example, label value as text) for every Example of a split folder that has a label;
    the others are skipped and, at the end, counted in the log."""
    unlabeled = 0
    for example in read_examples(directory):
        value = scalar(example.get(label))
        if value is None:
            unlabeled += 1
            continue
        yield example, str(value)
    if unlabeled and not quiet:
        log("skipped %d examples without a value for the label %r" % (unlabeled, label))


# ---- Numbers and files -----------------------------------------------------------------------

def num(value, digits=9):
    """A number for the JSON and text formats: integers stay integers; floats keep `digits`
    significant digits, so float32 noise (39.099998474121094) and libm's last bits stay out of
    the artifacts and their digests."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    value = float(value)
    if not math.isfinite(value):
        return None
    rounded = float("%.*g" % (digits, value))
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2 ** 53 else rounded


def write_json(path, value):
    """Writes a JSON file deterministically (keys in the order given, no NaN)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=1, ensure_ascii=False, allow_nan=False)
        handle.write("\n")


def read_json(directory, name, expected_format):
    """Reads `name` from an artifact folder and checks its "format" key."""
    path = os.path.join(directory, name)
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError) as error:
        fail("cannot read %s (%s); wire an artifact written by the matching steps/ bundle" % (path, error))
    if not isinstance(value, dict) or value.get("format") != expected_format:
        fail("%s is not in format %s (it says %r)" % (path, expected_format,
                                                       value.get("format") if isinstance(value, dict) else None))
    return value


def load_statistics(directory):
    return read_json(directory, "statistics.json", "zenml.statistics/1")


def load_schema(directory):
    return read_json(directory, "schema.json", "zenml.schema/1")


def load_model(directory):
    return read_json(directory, "model.json", "zenml.model/1")


def dataset(statistics, name):
    """The dataset `name` of a statistics document, failing with the names there are."""
    for entry in statistics["datasets"]:
        if entry["name"] == name:
            return entry
    fail("the statistics have no dataset %r (they have: %s)"
         % (name, ", ".join(d["name"] for d in statistics["datasets"]) or "none"))


# ---- Protobuf text format --------------------------------------------------------------------

class TextProto:
    """Writes protobuf text format: `field("name", value)`, `with message("name"):` nests."""

    def __init__(self):
        self.lines = []
        self.depth = 0

    def field(self, name, value):
        if value is None:
            return
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(num(value))
        elif isinstance(value, Enum):
            text = value.name
        else:
            text = json.dumps(str(value), ensure_ascii=False)  # a valid proto string literal
        self.lines.append("  " * self.depth + "%s: %s" % (name, text))

    def message(self, name):
        writer = self

        class _Block:
            def __enter__(self):
                writer.lines.append("  " * writer.depth + name + " {")
                writer.depth += 1

            def __exit__(self, *exc_info):
                writer.depth -= 1
                writer.lines.append("  " * writer.depth + "}")

        return _Block()

    def text(self):
        return "\n".join(self.lines) + "\n"


class Enum:
    """An enum value in text format (written bare, not quoted)."""

    def __init__(self, name):
        self.name = name


# ---- Models ------------------------------------------------------------------------------------

def model_inputs(model, example):
    """{feature name: value or None} of a model's features in an Example."""
    return {f["name"]: scalar(example.get(f["name"])) for f in model["features"]}


def predict(model, values):
    """The class index a model (softmax or gaussian_nb) predicts for {feature: value or None}."""
    kind = model["kind"]
    if kind == "softmax":
        return _argmax(_softmax_scores(model, values))
    if kind == "gaussian_nb":
        return _argmax(_naive_bayes_scores(model, values))
    fail("unknown model kind %r (known: softmax, gaussian_nb)" % kind)


def _argmax(scores):
    best = 0
    for index, score in enumerate(scores):
        if score > scores[best]:
            best = index
    return best


def _softmax_scores(model, values):
    # The input vector as the C trainer builds it: standardized numbers (missing -> mean, so 0),
    # then one 0/1 column per vocabulary entry (missing or unknown -> all 0).
    inputs = []
    for feature in model["features"]:
        value = values.get(feature["name"])
        if feature["type"] == "numeric":
            if value is None or isinstance(value, str):
                inputs.append(0.0)
            else:
                inputs.append((float(value) - feature["mean"]) / feature["std"])
        else:
            text = None if value is None else str(value)
            inputs.extend(1.0 if text == entry else 0.0 for entry in feature["vocabulary"])
    return [bias + sum(w * x for w, x in zip(row, inputs))
            for row, bias in zip(model["weights"], model["bias"])]


def _naive_bayes_scores(model, values):
    scores = list(model["log_priors"])
    for feature in model["features"]:
        value = values.get(feature["name"])
        if value is None:
            continue  # a missing value carries no evidence
        for index, params in enumerate(feature["per_class"]):
            if feature["type"] == "numeric":
                if isinstance(value, str):
                    continue
                variance = params["var"]
                scores[index] += -0.5 * math.log(2 * math.pi * variance) - (float(value) - params["mean"]) ** 2 / (2 * variance)
            else:
                counts = params["log_probs"]
                scores[index] += counts.get(str(value), params["log_unknown"])
    return scores
