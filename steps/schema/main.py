"""schema: infers a schema (types, presence, value counts, domains) from statistics."""

import math
import os

from zenml_step import fail, log, read_request, write_response
from zenml_ml import FLOAT, INT, STRING, Enum, TextProto, dataset, load_statistics, num, write_json

PROTO_TYPES = {INT: "INT", FLOAT: "FLOAT", STRING: "BYTES"}


def infer_feature(feature, examples, config):
    present = feature["count"]
    fraction = present / examples if examples else 0.0
    if present == examples:
        min_fraction = 1.0
    else:
        # Rounded down, less the slack, so that a sample a little sparser than this one passes.
        min_fraction = max(0.0, math.floor((fraction - config["presence_slack"]) * 1000) / 1000)
    entry = {
        "name": feature["name"],
        "type": feature["type"],
        "presence": {"min_fraction": num(min_fraction), "min_count": 1 if present else 0},
        "value_count": {"min": feature["num_values"]["min"], "max": feature["num_values"]["max"]},
        "domain": None,
    }
    if feature["type"] == STRING:
        stats = feature["string"]
        listed = len(stats["top_values"])
        categorical = 0 < stats["unique"] <= config["max_domain_size"] and stats["unique"] == listed
        if categorical:
            entry["domain"] = {"values": sorted(top["value"] for top in stats["top_values"])}
    elif present and config["numeric_ranges"]:
        entry["domain"] = {"min": feature["numeric"]["min"], "max": feature["numeric"]["max"]}
    return entry


def pbtxt(document):
    """The schema as a tensorflow_metadata Schema in text format, string domains inline."""
    out = TextProto()
    for feature in document["features"]:
        with out.message("feature"):
            out.field("name", feature["name"])
            out.field("type", Enum(PROTO_TYPES[feature["type"]]))
            with out.message("presence"):
                out.field("min_fraction", feature["presence"]["min_fraction"])
                out.field("min_count", feature["presence"]["min_count"])
            with out.message("value_count"):
                out.field("min", feature["value_count"]["min"])
                out.field("max", feature["value_count"]["max"])
            domain = feature["domain"]
            if domain is None:
                continue
            if "values" in domain:
                with out.message("string_domain"):
                    for value in domain["values"]:
                        out.field("value", value)
            else:
                with out.message("int_domain" if feature["type"] == INT else "float_domain"):
                    out.field("min", domain["min"])
                    out.field("max", domain["max"])
    return out.text()


def main():
    request = read_request()
    config = dict(request["config"])
    config.setdefault("split", "train")
    config.setdefault("max_domain_size", 50)
    config.setdefault("presence_slack", 0.05)
    config.setdefault("numeric_ranges", True)
    statistics = load_statistics(request["inputs"]["statistics"][0]["path"])
    names = [d["name"] for d in statistics["datasets"]]
    split = config["split"]
    if split not in names and names == ["all"]:
        split = "all"  # statistics of an unsplit artifact
    source = dataset(statistics, split)
    if source["num_examples"] == 0:
        fail("the %s statistics have no examples: a schema cannot be inferred from an empty data set" % split)

    features = [infer_feature(feature, source["num_examples"], config) for feature in source["features"]
                if feature["count"] > 0]
    skipped = [feature["name"] for feature in source["features"] if feature["count"] == 0]
    if skipped:
        log("left out (no value in %s):" % split, ", ".join(skipped))
    document = {"format": "zenml.schema/1", "features": features}
    output = request["outputs"]["schema"]["path"]
    write_json(os.path.join(output, "schema.json"), document)
    with open(os.path.join(output, "schema.pbtxt"), "w", encoding="utf-8") as handle:
        handle.write(pbtxt(document))

    categorical = sum(1 for f in features if f["domain"] and "values" in f["domain"])
    write_response(outputs={"schema": {"features": len(features), "categorical": categorical, "split": split}},
                   metrics={"features": len(features)},
                   message="%d features (%d categorical) from %s" % (len(features), categorical, split))


if __name__ == "__main__":
    main()
