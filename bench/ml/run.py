#!/usr/bin/env python3
"""The penguins pipeline on generated data sets: wall time, peak memory and throughput per step.

    python3 bench/ml/run.py                                  # 100k, 300k and 1M rows
    python3 bench/ml/run.py --rows 1000000 --trainer train-nb

For each size: generate a penguins-like CSV (examples/penguins/generate.py, cached in --work),
create a fresh workspace, and run examples/penguins/pipeline.yaml on it with the real zenml-run
(`run --json`, whose per-step `duration` is the host's wall time of the step's process). While it
runs, a sampler reads /proc every 20 ms and keeps, per step, the peak resident memory (VmHWM) of
the step's processes, found as descendants of zenml-run by the bundle folder in their environment
(ZENML_BUNDLE_DIR). It also keeps zenml-run's own VmHWM.
Prints a Markdown table and writes the figures as JSON (--json).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PIPELINE = os.path.join(REPO, "examples", "penguins", "pipeline.yaml")
GENERATE = os.path.join(REPO, "examples", "penguins", "generate.py")
# The penguins pipeline's steps by bundle folder (a step process has ZENML_BUNDLE_DIR set).
STEP_OF_BUNDLE = {"csv-source": "data", "split": "split", "statistics": "statistics", "schema": "schema",
                  "validate": "validate", "train-softmax": "train", "train-nb": "train", "evaluate": "evaluate"}


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def peak_kib(pid):
    status = read("/proc/%d/status" % pid)
    if status:
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if match:
            return int(match.group(1))
    return None


class Sampler(threading.Thread):
    """Per-step peak RSS of the descendants of `root`, by their working directory."""

    def __init__(self, root, interval=0.02):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peaks = {}
        self.steps = {}  # pid -> step name or None
        self.host_peak = 0
        self.stopped = threading.Event()

    def step_of(self, pid):
        if pid not in self.steps:
            try:
                with open("/proc/%d/environ" % pid, "rb") as handle:
                    environ = handle.read().split(b"\0")
            except OSError:
                return None
            step = None
            for entry in environ:
                if entry.startswith(b"ZENML_BUNDLE_DIR="):
                    step = STEP_OF_BUNDLE.get(os.path.basename(entry[17:].decode().rstrip("/")))
            # A build command has ZENML_BUILD_DIR writable and no request: its compiler is not a step
            # (nor SwiftPM, its compiler and linker, for the Swift bundle).
            comm = (read("/proc/%d/comm" % pid) or "").strip()
            if comm in ("cc", "cc1", "gcc", "as", "ld", "collect2", "sh", "flock", "clang", "ld.gold", "ld.lld") \
                    or comm.startswith("swift"):
                step = None
            self.steps[pid] = step
        return self.steps[pid]

    def children(self):
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = read("/proc/%s/stat" % entry)
                if stat:
                    parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
        found, frontier = set(), {self.root}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
            found |= frontier
        return found

    def run(self):
        while not self.stopped.is_set():
            self.host_peak = max(self.host_peak, peak_kib(self.root) or 0)
            for pid in self.children():
                step = self.step_of(pid)
                kib = peak_kib(pid)
                if step and kib:
                    self.peaks[step] = max(self.peaks.get(step, 0), kib)
            self.stopped.wait(self.interval)


def generated_csv(rows, work):
    path = os.path.join(work, "penguins-%d.csv" % rows)
    if not os.path.exists(path):
        subprocess.run([sys.executable, GENERATE, "--rows", str(rows), "--out", path + ".part"], check=True)
        os.rename(path + ".part", path)
    return path


def pipeline_for(csv_path, trainer, work, rows):
    """examples/penguins/pipeline.yaml with absolute bundle paths and the generated CSV."""
    with open(PIPELINE, encoding="utf-8") as handle:
        text = handle.read()
    text = text.replace("../../steps/", os.path.join(REPO, "steps") + "/")
    text = text.replace("path: data/penguins.csv", "path: %s" % csv_path)
    text = text.replace("/train-softmax\n", "/%s\n" % trainer)
    path = os.path.join(work, "pipeline-%d-%s.yaml" % (rows, trainer))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def run_size(binary, rows, trainer, work):
    csv_path = generated_csv(rows, work)
    workspace = os.path.join(work, "ws-%d-%s" % (rows, trainer))
    subprocess.run(["rm", "-rf", workspace], check=True)
    os.makedirs(workspace)
    subprocess.run([binary, "init"], cwd=workspace, check=True, capture_output=True)
    pipeline = pipeline_for(csv_path, trainer, work, rows)
    # Build the C bundles first so that their compilation is not in the figures.
    subprocess.run([binary, "run", pipeline, "--only", "data"], cwd=workspace, check=True, capture_output=True)
    subprocess.run(["rm", "-rf", os.path.join(workspace, ".zenml")], check=True)
    subprocess.run([binary, "init"], cwd=workspace, check=True, capture_output=True)

    started = time.monotonic()
    process = subprocess.Popen([binary, "run", pipeline, "--json"], cwd=workspace, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    sampler = Sampler(process.pid)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.monotonic() - started
    sampler.stopped.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit("the run failed:\n%s\n%s" % (stdout, stderr))
    document = json.loads(stdout)
    steps = []
    for step in document["run"]["steps"]:
        duration = step.get("duration")
        steps.append({"step": step["name"], "state": step["state"], "seconds": duration,
                      "rows_per_second": rows / duration if duration else None,
                      "peak_rss_mib": round(sampler.peaks.get(step["name"], 0) / 1024, 1)})
    csv_bytes = os.path.getsize(csv_path)
    return {"rows": rows, "trainer": trainer, "csv_bytes": csv_bytes, "wall_seconds": wall,
            "host_peak_rss_mib": round(sampler.host_peak / 1024, 1), "steps": steps,
            "run_id": document["run"]["run_id"]}


def table(results):
    sizes = [r["rows"] for r in results]
    lines = ["| step | " + " | ".join("%s rows: s / rows/s / peak MiB" % format(n, ",") for n in sizes) + " |",
             "| --- |" + " --- |" * len(sizes)]
    for index, step in enumerate(results[0]["steps"]):
        cells = []
        for result in results:
            entry = result["steps"][index]
            cells.append("%.2f / %s / %.1f" % (entry["seconds"] or 0,
                                               format(int(entry["rows_per_second"] or 0), ","), entry["peak_rss_mib"]))
        lines.append("| %s | %s |" % (step["step"], " | ".join(cells)))
    lines.append("| **whole run** | " + " | ".join(
        "%.1f s, zenml-run %.1f MiB" % (r["wall_seconds"], r["host_peak_rss_mib"]) for r in results) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,300000,1000000", help="comma-separated sizes")
    parser.add_argument("--trainer", default="train-softmax", choices=["train-softmax", "train-nb"])
    parser.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "zenml-bench-ml"))
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--zenml-run", default=os.environ.get("ZENML_RUN")
                        or os.path.join(REPO, ".build", "release", "zenml-run"))
    args = parser.parse_args()
    binary = args.zenml_run
    if not os.access(binary, os.X_OK):
        binary = os.path.join(REPO, ".build", "debug", "zenml-run")
    os.makedirs(args.work, exist_ok=True)
    results = []
    for rows in [int(n) for n in args.rows.split(",")]:
        print("running %s rows..." % format(rows, ","), file=sys.stderr, flush=True)
        results.append(run_size(binary, rows, args.trainer, args.work))
    print(table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                   "python": platform.python_version(), "zenml_run": binary},
                       "results": results}, handle, indent=1)
            handle.write("\n")


if __name__ == "__main__":
    main()
