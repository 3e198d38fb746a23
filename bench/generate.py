#!/usr/bin/env python3
"""Generate benchmark workloads for zenml-run, DVC and Snakemake (Python 3 standard library only).

Usage:
    generate.py chain N OUTDIR [--forms zenml,dvc,snakemake] [--change]
    generate.py fan N OUTDIR   [--forms ...] [--change] [--no-gather]
    generate.py big FILE OUTDIR [--forms ...]

Each workload is written in three equivalent forms:

    OUTDIR/zenml/      pipeline.yaml + step bundles under steps/
    OUTDIR/dvc/        dvc.yaml (run `dvc init --no-scm` in it before `dvc repro`)
    OUTDIR/snakemake/  Snakefile

Every step is one trivial POSIX shell process that reads the first line of each input file
and writes one small file: `out = sum(inputs) + index`.  The three forms read and write the
same files per step:

    chain N  step i (0..N-1) reads step i-1's file (step 0 reads nothing), adds i.
    fan N    `src` writes 0; leaves j = 1..N each read src and add j (in parallel);
             `gather` reads all N leaf files and writes their sum (disable with --no-gather).
    big      one step over an external FILE (1 GiB in the benchmark), writing its size
             with `wc -c < FILE`: zenml-run gets it as a `format: path` config value, DVC as
             a dependency, Snakemake as an input.

--change rewrites only the pipeline definitions (pipeline.yaml, dvc.yaml, Snakefile) with
the parameter of one middle step changed (chain: step N//2; fan: leaf N//2): its index
becomes index + 1000, so that step's output changes and everything downstream of it must
re-run in every tool.  See run.sh for why this is the same change in all three tools.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

FORMS = ("zenml", "dvc", "snakemake")
BUMP = 1000

# The zenml-run step, shared by every bundle: one `sh` process, builtins only (no jq, python,
# sed or cat), so that a step costs about as much as the equivalent DVC or Snakemake shell
# command.  It splits the request at double quotes, which is linear in the request's size
# (the gather step's request lists 500 artifacts), and accepts compact or indented JSON in
# any key order with "/" possibly escaped as "\/" (Swift's JSONEncoder does that).
STEP_SH = r"""#!/bin/sh
# zenml-run benchmark step (contract 1), POSIX sh builtins only (plus `wc` for config.file).
# Writes OUT/data = sum of the first line of each input artifact's `data` file + config.index
# (0 if absent), or, when config.file is set, the byte count of that file.
nl='
'
req=
while IFS= read -r line || [ -n "$line" ]; do req="$req$line$nl"; done
fail() { printf '{"status":"error","message":"%s"}\n' "$1"; exit 2; }
# Split the request at double quotes (linear in its size): keys and string values become
# words of their own; the word after a key starts with its colon (and holds the value when
# that is not a string).  Enough for the requests the host writes: compact or indented JSON
# in any key order, "/" possibly escaped as "\/", no escaped quotes in keys or paths.
set -f
IFS='"'
# shellcheck disable=SC2086 # splitting at quotes is the point
set -- $req
IFS=" 	$nl"
contract='' idx=0 out='' file='' s=0 sect='' expect='' prev=''
for w do
    if [ -n "$expect" ]; then
        case $w in *'\/'*)   # undo "\/" escapes
            r=
            while :; do
                case $w in
                    *'\/'*) r="$r${w%%\\/*}/"; w=${w#*\\/} ;;
                    *) w=$r$w; break ;;
                esac
            done ;;
        esac
        case $expect/$sect in
            path/in) IFS= read -r v < "$w/data" || fail "cannot read $w/data"; s=$((s + v)) ;;
            path/out) [ -n "$out" ] || out=$w ;;
            file/*) file=$w ;;
        esac
        expect='' prev=$w
        continue
    fi
    t=${w#"${w%%[! 	$nl]*}"}
    case $t in
        :*)
            v=${t#"${t%%[!: 	$nl]*}"}
            case $prev in
                inputs) sect=in ;;
                outputs) sect=out ;;
                contract) contract=${v%%[!0-9.eE+-]*} ;;
                index) idx=${v%%[!0-9-]*} ;;
                *) [ -n "$v" ] || expect=$prev ;;
            esac ;;
    esac
    prev=$w
done
[ "$contract" = 1 ] || fail "unsupported contract '$contract' (this step speaks 1)"
[ -n "$out" ] || fail "no output path in the request"
if [ -n "$file" ]; then
    wc -c < "$file" > "$out/data" || fail "cannot size $file"
else
    echo $((s + idx)) > "$out/data" || fail "cannot write $out/data"
fi
echo '{"status":"ok"}'
"""

LINK_YAML = """\
contract: 1
name: link
version: 0.1.0
description: Benchmark step; writes (sum of its inputs) + index.
entrypoint: step.sh
inputs:
  in: {type: Number, optional: true}
outputs:
  out: Number
config:
  properties:
    index: {type: integer, default: 0}
timeout: 60
"""

GATHER_YAML = """\
contract: 1
name: gather
version: 0.1.0
description: Benchmark step; writes the sum of all its inputs.
entrypoint: step.sh
inputs:
  parts: {type: Number, multiple: true}
outputs:
  out: Number
timeout: 60
"""

SIZE_YAML = """\
contract: 1
name: size
version: 0.1.0
description: Benchmark step; writes the byte count of an external file.
entrypoint: step.sh
outputs:
  out: Number
config:
  properties:
    file: {type: string, format: path}
  required: [file]
timeout: 600
"""


def write(path: str, text: str, executable: bool = False) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    if executable:
        mode = os.stat(path).st_mode
        os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def bundle(root: str, name: str, manifest: str, script: str) -> None:
    write(os.path.join(root, "steps", name, "step.yaml"), manifest)
    write(os.path.join(root, "steps", name, "step.sh"), script, executable=True)


def q(text: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------- chain


def chain_indices(n: int, change: bool) -> list[int]:
    indices = list(range(n))
    if change:
        indices[n // 2] += BUMP
    return indices


def chain_zenml(n: int, root: str, change: bool, spec_only: bool) -> None:
    if not spec_only:
        bundle(root, "link", LINK_YAML, STEP_SH)
    idx = chain_indices(n, change)
    lines = [f"name: chain{n}", "steps:"]
    for i in range(n):
        lines.append(f"  l{i:04d}:")
        lines.append("    uses: ./steps/link")
        lines.append(f"    config: {{index: {idx[i]}}}")
        if i > 0:
            lines.append(f"    inputs: {{in: l{i - 1:04d}.out}}")
    write(os.path.join(root, "pipeline.yaml"), "\n".join(lines) + "\n")


def chain_dvc(n: int, root: str, change: bool, spec_only: bool) -> None:
    idx = chain_indices(n, change)
    lines = ["stages:"]
    for i in range(n):
        out = f"out/l{i:04d}.txt"
        lines.append(f"  l{i:04d}:")
        if i == 0:
            cmd = f"echo $((0 + {idx[i]})) > {out}"
        else:
            prev = f"out/l{i - 1:04d}.txt"
            cmd = f"read s < {prev}; echo $((s + {idx[i]})) > {out}"
            lines.append(f"    deps: [{prev}]")
        lines.append(f"    cmd: {q(cmd)}")
        lines.append(f"    outs: [{out}]")
    write(os.path.join(root, "dvc.yaml"), "\n".join(lines) + "\n")
    if not spec_only:
        os.makedirs(os.path.join(root, "out"), exist_ok=True)


def chain_snakemake(n: int, root: str, change: bool, spec_only: bool) -> None:
    idx = chain_indices(n, change)
    text = f'''# Benchmark: chain of {n} steps; step i reads step i-1's file and adds IDX[i].
# One generic rule (as zenml-run uses one shared bundle); IDX[i] is a param, so changing one
# entry re-runs that job (params rerun trigger) and its dependents (newer input mtime).
N = {n}
IDX = {idx!r}

wildcard_constraints:
    i=r"\\d{{4}}"

rule all:
    input: f"out/l{{N - 1:04d}}.txt"

rule head:
    output: "out/l0000.txt"
    params: idx=IDX[0]
    shell: "echo $((0 + {{params.idx}})) > {{output}}"

rule link:
    input: lambda w: f"out/l{{int(w.i) - 1:04d}}.txt"
    output: "out/l{{i}}.txt"
    params: idx=lambda w: IDX[int(w.i)]
    shell: "read s < {{input}}; echo $((s + {{params.idx}})) > {{output}}"

ruleorder: head > link
'''
    write(os.path.join(root, "Snakefile"), text)


# ---------------------------------------------------------------------------- fan


def fan_indices(n: int, change: bool) -> list[int]:
    """Leaf indices 1..n (list position j-1)."""
    indices = list(range(1, n + 1))
    if change:
        indices[n // 2 - 1 if n > 1 else 0] += BUMP
    return indices


def fan_zenml(n: int, root: str, change: bool, spec_only: bool, gather: bool) -> None:
    if not spec_only:
        bundle(root, "link", LINK_YAML, STEP_SH)
        if gather:
            bundle(root, "gather", GATHER_YAML, STEP_SH)
    idx = fan_indices(n, change)
    lines = [f"name: fan{n}", "steps:", "  src:", "    uses: ./steps/link", "    config: {index: 0}"]
    for j in range(1, n + 1):
        lines.append(f"  m{j:04d}:")
        lines.append("    uses: ./steps/link")
        lines.append(f"    config: {{index: {idx[j - 1]}}}")
        lines.append("    inputs: {in: src.out}")
    if gather:
        lines.append("  gather:")
        lines.append("    uses: ./steps/gather")
        lines.append("    inputs:")
        lines.append("      parts:")
        for j in range(1, n + 1):
            lines.append(f"        - m{j:04d}.out")
    write(os.path.join(root, "pipeline.yaml"), "\n".join(lines) + "\n")


GATHER_CMD = 's=0; for f in {files}; do read v < $f; s=$((s + v)); done; echo $s > out/gather.txt'


def fan_dvc(n: int, root: str, change: bool, spec_only: bool, gather: bool) -> None:
    idx = fan_indices(n, change)
    lines = [
        "stages:",
        "  src:",
        f"    cmd: {q('echo $((0 + 0)) > out/src.txt')}",
        "    outs: [out/src.txt]",
    ]
    for j in range(1, n + 1):
        out = f"out/m{j:04d}.txt"
        lines.append(f"  m{j:04d}:")
        lines.append(f"    cmd: {q(f'read s < out/src.txt; echo $((s + {idx[j - 1]})) > {out}')}")
        lines.append("    deps: [out/src.txt]")
        lines.append(f"    outs: [{out}]")
    if gather:
        lines.append("  gather:")
        # Same files as the Snakemake rule's {input}; the glob keeps the command short.
        lines.append(f"    cmd: {q(GATHER_CMD.format(files='out/m*.txt'))}")
        lines.append("    deps:")
        for j in range(1, n + 1):
            lines.append(f"      - out/m{j:04d}.txt")
        lines.append("    outs: [out/gather.txt]")
    write(os.path.join(root, "dvc.yaml"), "\n".join(lines) + "\n")
    if not spec_only:
        os.makedirs(os.path.join(root, "out"), exist_ok=True)


def fan_snakemake(n: int, root: str, change: bool, spec_only: bool, gather: bool) -> None:
    idx = fan_indices(n, change)
    target = '"out/gather.txt"' if gather else 'expand("out/m{j:04d}.txt", j=range(1, N + 1))'
    text = f'''# Benchmark: fan of {n}: src, then {n} independent leaves each reading src{", then a gather" if gather else ""}.
N = {n}
IDX = {idx!r}

wildcard_constraints:
    j=r"\\d{{4}}"

rule all:
    input: {target}

rule src:
    output: "out/src.txt"
    shell: "echo $((0 + 0)) > {{output}}"

rule leaf:
    input: "out/src.txt"
    output: "out/m{{j}}.txt"
    params: idx=lambda w: IDX[int(w.j) - 1]
    shell: "read s < {{input}}; echo $((s + {{params.idx}})) > {{output}}"
'''
    if gather:
        text += '''
rule gather:
    input: expand("out/m{j:04d}.txt", j=range(1, N + 1))
    output: "out/gather.txt"
    shell: "s=0; for f in {input}; do read v < $f; s=$((s + v)); done; echo $s > {output}"
'''
    write(os.path.join(root, "Snakefile"), text)


# ---------------------------------------------------------------------------- big


def big_zenml(path: str, root: str) -> None:
    bundle(root, "size", SIZE_YAML, STEP_SH)
    text = f"name: big\nsteps:\n  size:\n    uses: ./steps/size\n    config: {{file: {q(path)}}}\n"
    write(os.path.join(root, "pipeline.yaml"), text)


def big_dvc(path: str, root: str) -> None:
    cmd = f"wc -c < {path} > out/size.txt"
    text = f"stages:\n  size:\n    cmd: {q(cmd)}\n    deps: [{q(path)}]\n    outs: [out/size.txt]\n"
    write(os.path.join(root, "dvc.yaml"), text)
    os.makedirs(os.path.join(root, "out"), exist_ok=True)


def big_snakemake(path: str, root: str) -> None:
    text = f'''# Benchmark: one step over a big external input file.
rule all:
    input: "out/size.txt"

rule size:
    input: {path!r}
    output: "out/size.txt"
    shell: "wc -c < {{input}} > {{output}}"
'''
    write(os.path.join(root, "Snakefile"), text)


# ---------------------------------------------------------------------------- expected results


def expected(workload: str, n: int, change: bool, gather: bool = True) -> int:
    """The number in the final output file (chain: last step; fan: gather or last leaf)."""
    if workload == "chain":
        return sum(chain_indices(n, change))
    idx = fan_indices(n, change)
    return sum(idx) if gather else idx[-1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["chain", "fan", "big", "expected"])
    parser.add_argument("size", help="N for chain/fan, the input FILE for big, 'chain:N' or 'fan:N' for expected")
    parser.add_argument("outdir", nargs="?", default=None)
    parser.add_argument("--forms", default=",".join(FORMS), help="comma-separated subset of zenml,dvc,snakemake")
    parser.add_argument("--change", action="store_true", help="rewrite only the pipeline definitions, middle step changed")
    parser.add_argument("--no-gather", action="store_true", help="fan: no final gather step")
    args = parser.parse_args(argv)

    if args.workload == "expected":
        kind, _, n = args.size.partition(":")
        print(expected(kind, int(n), args.change, not args.no_gather))
        return 0
    if args.outdir is None:
        parser.error("OUTDIR is required")
    forms = [f for f in args.forms.split(",") if f]
    for form in forms:
        if form not in FORMS:
            parser.error(f"unknown form {form!r}")
    gather = not args.no_gather
    for form in forms:
        root = os.path.join(args.outdir, form)
        os.makedirs(root, exist_ok=True)
        if args.workload == "big":
            path = os.path.abspath(args.size)
            {"zenml": big_zenml, "dvc": big_dvc, "snakemake": big_snakemake}[form](path, root)
            continue
        n = int(args.size)
        if n < 1:
            parser.error("N must be at least 1")
        if args.workload == "chain":
            {"zenml": chain_zenml, "dvc": chain_dvc, "snakemake": chain_snakemake}[form](n, root, args.change, args.change)
        else:
            {"zenml": fan_zenml, "dvc": fan_dvc, "snakemake": fan_snakemake}[form](n, root, args.change, args.change, gather)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
