#!/usr/bin/env python3
"""Check one benchmark run (untimed): did the tool run exactly the steps it had to, and is
the final output right?  Standard library only.

Usage: verify.py TOOL WORKSPACE LOG WORKLOAD SIZE PHASE [--zenml-run BIN] [--big-bytes B]

TOOL: zenml | dvc | snakemake;  WORKLOAD: chain | fan | big;  PHASE: cold | cached | change.
Exit status 0 when right; otherwise 1, with the reason on stderr.

Steps that must run:  cold: all;  cached: none;  change: chain N - N//2 (the middle step and
everything after it), fan 2 (one leaf and the gather).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402


def expected_runs(workload: str, n: int, phase: str) -> int:
    if phase == "cached":
        return 0
    if workload == "big":
        return 1
    if workload == "chain":
        return n if phase == "cold" else n - n // 2
    return n + 2 if phase == "cold" else 2


def final_step(workload: str, n: int) -> tuple[str, str]:
    """(zenml-run step name, peer output file) of the last step."""
    if workload == "chain":
        return f"l{n - 1:04d}", f"out/l{n - 1:04d}.txt"
    if workload == "fan":
        return "gather", "out/gather.txt"
    return "size", "out/size.txt"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("tool", choices=["zenml", "dvc", "snakemake"])
    parser.add_argument("workspace")
    parser.add_argument("log")
    parser.add_argument("workload", choices=["chain", "fan", "big"])
    parser.add_argument("size", type=int)
    parser.add_argument("phase", choices=["cold", "cached", "change"])
    parser.add_argument("--zenml-run", default=None)
    parser.add_argument("--big-bytes", type=int, default=None)
    args = parser.parse_args(argv)

    with open(args.log, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    step_name, out_file = final_step(args.workload, args.size)
    output_path = os.path.join(args.workspace, out_file)

    if args.tool == "zenml":
        match = re.search(r"run (\S+) complete: (\d+) ran, (\d+) cached", log)
        if not match:
            print("no 'run ... complete: N ran, M cached' line in the zenml-run output", file=sys.stderr)
            return 1
        run_id, ran = match.group(1), int(match.group(2))
        shown = subprocess.run(
            [args.zenml_run, "runs", "show", run_id, "--json"],
            cwd=args.workspace, capture_output=True, text=True, check=False,
        )
        if shown.returncode != 0:
            print(f"zenml-run runs show {run_id} --json failed: {shown.stderr.strip()[-300:]}", file=sys.stderr)
            return 1
        executions = json.loads(shown.stdout)["run"]["executions"]
        last = [e for e in executions if e.get("step") == step_name]
        if not last:
            print(f"run {run_id} has no execution of step {step_name}", file=sys.stderr)
            return 1
        output_path = os.path.join(last[-1]["outputs"]["out"]["uri"], "data")
    elif args.tool == "dvc":
        ran = len(re.findall(r"^Running stage '", log, flags=re.M))
    else:
        ran = len([r for r in re.findall(r"^(?:local)?rule (\w+):", log, flags=re.M) if r != "all"])

    want_runs = expected_runs(args.workload, args.size, args.phase)
    if ran != want_runs:
        print(f"{args.tool} ran {ran} step(s), expected {want_runs}", file=sys.stderr)
        return 1
    if args.workload == "big":
        want = str(args.big_bytes)
    else:
        want = str(generate.expected(args.workload, args.size, args.phase == "change"))
    try:
        with open(output_path, encoding="utf-8") as handle:
            got = handle.read().strip()
    except OSError as error:
        print(f"cannot read the final output: {error}", file=sys.stderr)
        return 1
    if got != want:
        print(f"final output {output_path} holds {got!r}, expected {want!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
