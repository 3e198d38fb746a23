"""validate: anomalies of one split's statistics against a schema, and drift against a baseline.

Checks, per feature: missing_feature (in the schema, no value in the data), new_feature (in the
data, not in the schema), type_change, out_of_domain (a string outside the domain's values, a
number outside [min, max]), presence_drop (present in fewer examples than the schema's
min_fraction) and, with a baseline, drift: the L-infinity distance between the value
distributions of each categorical (STRING) feature, max over values of |p(value) - q(value)|.
"""

import os

from zenml_step import fail, read_request, write_response
from zenml_ml import STRING, dataset, load_schema, load_statistics, num, write_json


def anomaly(feature, kind, severity, description):
    return {"feature": feature, "kind": kind, "severity": severity, "description": description}


def check_feature(spec, stats, examples):
    name = spec["name"]
    found = []
    if stats is None or stats["count"] == 0:
        if spec["presence"]["min_count"] > 0 or spec["presence"]["min_fraction"] > 0:
            found.append(anomaly(name, "missing_feature", "error",
                                 "the schema expects %s but no example has it" % name))
        return found
    if stats["type"] != spec["type"]:
        found.append(anomaly(name, "type_change", "error", "the schema says %s, the data has %s"
                             % (spec["type"], stats["type"])))
        return found  # domain checks compare values of the wrong type
    fraction = stats["count"] / examples if examples else 0.0
    if fraction < spec["presence"]["min_fraction"]:
        found.append(anomaly(name, "presence_drop", "error", "present in %.1f%% of the examples; the schema "
                             "requires at least %.1f%%" % (100 * fraction, 100 * spec["presence"]["min_fraction"])))
    domain = spec.get("domain")
    if domain and "values" in domain and stats["type"] == STRING:
        allowed = set(domain["values"])
        listed = stats["string"]["top_values"]
        outside = [top for top in listed if top["value"] not in allowed]
        if outside:
            count = sum(top["count"] for top in outside)
            shown = ", ".join("%r (%d)" % (top["value"], top["count"]) for top in outside[:5])
            found.append(anomaly(name, "out_of_domain", "error", "%d values outside the domain: %s%s"
                                 % (count, shown, ", ..." if len(outside) > 5 else "")))
        elif stats["string"]["unique"] > len(listed):
            found.append(anomaly(name, "out_of_domain", "warning", "%d distinct values, more than the %d the "
                                 "statistics list; raise the statistics step's top_k to check them all"
                                 % (stats["string"]["unique"], len(listed))))
    elif domain and "min" in domain and stats["type"] != STRING:
        low, high = stats["numeric"]["min"], stats["numeric"]["max"]
        if low < domain["min"] or high > domain["max"]:
            # A warning: new data often reaches a little past the range observed in training.
            found.append(anomaly(name, "out_of_domain", "warning", "values range over [%s, %s], outside the "
                                 "schema's [%s, %s]" % (low, high, domain["min"], domain["max"])))
    return found


def distribution(feature):
    total = sum(top["count"] for top in feature["string"]["top_values"])
    return {top["value"]: top["count"] / total for top in feature["string"]["top_values"]} if total else {}


def main():
    request = read_request()
    config = request["config"]
    split = config.get("split", "eval")
    threshold = config.get("drift_threshold", 0.1)
    statistics = load_statistics(request["inputs"]["statistics"][0]["path"])
    if split not in [d["name"] for d in statistics["datasets"]] and \
            [d["name"] for d in statistics["datasets"]] == ["all"]:
        split = "all"
    current = dataset(statistics, split)
    schema = load_schema(request["inputs"]["schema"][0]["path"])

    by_name = {feature["name"]: feature for feature in current["features"]}
    anomalies = []
    for spec in schema["features"]:
        anomalies.extend(check_feature(spec, by_name.get(spec["name"]), current["num_examples"]))
    known = {spec["name"] for spec in schema["features"]}
    for feature in current["features"]:
        if feature["name"] not in known and feature["count"] > 0:
            anomalies.append(anomaly(feature["name"], "new_feature", "error",
                                     "%s (%s) is not in the schema" % (feature["name"], feature["type"])))

    drift = []
    baselines = request["inputs"].get("baseline") or []
    if baselines:
        baseline_statistics = load_statistics(baselines[0]["path"])
        baseline_split = config.get("baseline_split") or split
        baseline = {f["name"]: f for f in dataset(baseline_statistics, baseline_split)["features"]}
        for feature in current["features"]:
            other = baseline.get(feature["name"])
            if feature["type"] != STRING or other is None or other["type"] != STRING:
                continue
            p, q = distribution(feature), distribution(other)
            if not p or not q:
                continue
            distance = max(abs(p.get(value, 0.0) - q.get(value, 0.0)) for value in set(p) | set(q))
            drift.append({"feature": feature["name"], "distance": num(distance, 6), "threshold": threshold})
            if distance > threshold:
                anomalies.append(anomaly(feature["name"], "drift", "error",
                                         "L-infinity distance %.4f from the baseline (%s) exceeds %g"
                                         % (distance, baseline_split, threshold)))

    document = {"format": "zenml.anomalies/1", "split": split, "anomalies": anomalies, "drift": drift}
    write_json(os.path.join(request["outputs"]["anomalies"]["path"], "anomalies.json"), document)
    errors = sum(1 for a in anomalies if a["severity"] == "error")
    summary = "%d anomalies (%d errors) in %s" % (len(anomalies), errors, split)
    if errors and config.get("fail_on_error", False):
        fail(summary + ": " + "; ".join("%s: %s" % (a["feature"], a["description"]) for a in anomalies[:5]))
    metrics = {"anomalies": len(anomalies), "errors": errors}
    if drift:
        metrics["max_drift"] = max(entry["distance"] for entry in drift)
    write_response(outputs={"anomalies": {"anomalies": len(anomalies), "errors": errors, "valid": errors == 0,
                                          "split": split}},
                   metrics=metrics, message=summary)


if __name__ == "__main__":
    main()
