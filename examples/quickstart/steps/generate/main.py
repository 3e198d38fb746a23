"""generate: writes `rows` deterministic pseudo-random numbers as tf.train.Example TFRecords.

A zenml-run step (step contract version 1, see protocol/SPEC.md) on the Python step SDK, which
sits beside this file as a link into protocol/python (the host hashes and packs what the link
points to, so the bundle stays self-contained). Each record is an Example with an int64 `id` and
a float `value` in [0, 100).
"""

import random

from zenml_step import ExampleWriter, log, read_request, write_response


def main():
    request = read_request()
    config = request["config"]
    rows = int(config["rows"])
    seed = request["seed"] + int(config["seed_offset"])
    # random.Random(int).random() gives the same sequence on every platform and Python 3 version
    # (integer arithmetic, no libm), and the SDK writes deterministic TFRecords, so the same
    # request always yields the same bytes, and so the same artifact digest.
    rng = random.Random(seed)
    with ExampleWriter(request["outputs"]["examples"]["path"]) as out:
        for index in range(rows):
            out.write({"id": index, "value": 100.0 * rng.random()})
    log("wrote %d examples with seed %d" % (rows, seed))
    write_response(outputs={"examples": {"records": rows}})


if __name__ == "__main__":
    main()
