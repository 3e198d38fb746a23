"""generate: writes `rows` deterministic pseudo-random numbers to <table>/data.csv.

A zenml-run step (step contract version 1, see protocol/SPEC.md). It reads the request on
stdin, writes its output, and prints the response on stdout; logs go to stderr. The few
contract helpers are inlined instead of importing protocol/python/zenml_step.py, so that the
bundle is self-contained (its digest covers every file it uses).
"""

import json
import os
import random
import sys

CONTRACT_VERSION = 1


def log(*args):
    print("generate:", *args, file=sys.stderr, flush=True)


def read_request():
    request = json.load(sys.stdin)
    contract = request.get("contract") if isinstance(request, dict) else None
    if type(contract) is not int or contract != CONTRACT_VERSION:
        log("error: this step speaks step contract version %d, but the request has contract %s"
            % (CONTRACT_VERSION, json.dumps(contract)))
        sys.exit(2)
    return request


def main():
    request = read_request()
    config = request["config"]
    rows = int(config.get("rows", 100))
    seed_offset = int(config.get("seed_offset", 0))
    seed = request["seed"] + seed_offset
    out_dir = request["outputs"]["table"]["path"]

    # random.Random(int).random() gives the same sequence on every platform and Python 3
    # version (it is integer arithmetic, no libm), and "%.6f" formats the same everywhere, so
    # the same request always yields the same bytes, and so the same artifact digest.
    rng = random.Random(seed)
    path = os.path.join(out_dir, "data.csv")
    with open(path, "w", encoding="utf-8", newline="\n") as table:
        table.write("id,value\n")
        for index in range(rows):
            table.write("%d,%.6f\n" % (index, 100.0 * rng.random()))
    log("wrote %d rows with seed %d to %s" % (rows, seed, path))

    response = {"status": "ok", "outputs": {"table": {"properties": {"rows": rows}}}}
    print(json.dumps(response))


if __name__ == "__main__":
    main()
