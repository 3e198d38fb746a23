"""A small stand-in for the zenml-run host, for testing step bundles without the Swift build.

It starts one step the way SPEC.md says the host does (fresh scratch directory as the working
directory, clean environment, request on stdin) and applies the same acceptance rules to the
result (response schema, declared outputs non-empty, nothing undeclared written, no escaping
symbolic links). It is deliberately simple: no store, no metadata, no cache lookups.
"""

import json
import os
import random
import shutil
import stat
import subprocess
from dataclasses import dataclass, field

import jsonschema

import reference

PROTOCOL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_DIR = os.path.join(PROTOCOL_DIR, "schemas")


def load_schema(name):
    with open(os.path.join(SCHEMA_DIR, name + ".schema.json"), encoding="utf-8") as handle:
        return json.load(handle)


def load_manifest(bundle):
    """Reads a bundle's step.yaml (needs PyYAML)."""
    import yaml

    with open(os.path.join(bundle, "step.yaml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def resolve_config(manifest, config):
    """Applies defaults (the host also checks types and bounds; the tests pass valid configs)."""
    resolved = dict(config)
    for key, schema in ((manifest.get("config") or {}).get("properties") or {}).items():
        if key not in resolved and "default" in schema:
            resolved[key] = schema["default"]
    return resolved


def swift_style_json(value, seed=0):
    """JSON as Swift's JSONEncoder writes it: compact, '/' escaped as '\\/', keys in any order."""

    def shuffle(v, rng):
        if isinstance(v, dict):
            items = [(k, shuffle(x, rng)) for k, x in v.items()]
            rng.shuffle(items)
            return dict(items)
        if isinstance(v, list):
            return [shuffle(x, rng) for x in v]
        return v

    text = json.dumps(shuffle(value, random.Random(seed)), separators=(",", ":"), ensure_ascii=False)
    return text.replace("/", "\\/")


@dataclass
class StepResult:
    returncode: int
    stdout: str
    stderr: str
    request: dict
    outputs: dict  # output name -> directory
    response: dict = None
    problems: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems


def clean_environment(bundle, scratch, manifest, host_environ=None):
    host_environ = os.environ if host_environ is None else host_environ
    env = {
        "PATH": host_environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": scratch,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": os.path.join(scratch, "tmp"),
        "SOURCE_DATE_EPOCH": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "ZENML_BUNDLE_DIR": bundle,
        "ZENML_CONTRACT_VERSION": "1",
    }
    for name in manifest.get("env", []):
        if name in host_environ:
            env[name] = host_environ[name]
    return env


def command_line(bundle, manifest, env):
    build = env.get("ZENML_BUILD_DIR", "${BUILD}")
    entrypoint = str(manifest["entrypoint"]).replace("${BUNDLE}", bundle).replace("${BUILD}", build)
    candidate = os.path.join(bundle, entrypoint)
    if os.path.isfile(candidate):
        program = candidate
    else:
        program = shutil.which(entrypoint, path=env["PATH"]) or entrypoint
    args = [a if isinstance(a, str) else reference.canonical_json(a) for a in manifest.get("args", [])]
    return [program] + [a.replace("${BUNDLE}", bundle).replace("${BUILD}", build) for a in args]


def run_step(bundle, workdir, config=None, inputs=None, *, manifest=None, step_name=None,
             request_changes=None, encode=None, timeout=120):
    """Runs one step bundle; returns a StepResult whose `problems` lists every rule broken.

    inputs          -- {input name: [artifact directory, ...]}; digests are computed here.
    request_changes -- a function that may edit the request dict before it is sent.
    encode          -- a function turning the request into text (default: json.dumps).
    """
    bundle = os.path.abspath(bundle)
    manifest = manifest or load_manifest(bundle)
    step_name = step_name or manifest["name"]
    scratch = os.path.join(workdir, "scratch")
    outputs_parent = os.path.join(workdir, "outputs")
    os.makedirs(os.path.join(scratch, "tmp"))
    os.makedirs(outputs_parent)

    resolved = resolve_config(manifest, config or {})
    artifacts = {}  # every declared input appears; an unwired optional one with []
    for name in manifest.get("inputs") or {}:
        artifacts[name] = []
        for directory in (inputs or {}).get(name, []):
            properties_file = directory + ".properties.json"
            properties = {}
            if os.path.exists(properties_file):
                with open(properties_file, encoding="utf-8") as handle:
                    properties = json.load(handle)
            spec = manifest["inputs"][name]
            artifacts[name].append({
                "path": os.path.abspath(directory),
                "type": spec if isinstance(spec, str) else spec["type"],
                "digest": reference.tree_digest(directory),
                "properties": properties,
            })
    outputs = {}
    for name, spec in (manifest.get("outputs") or {}).items():
        outputs[name] = os.path.join(outputs_parent, name)
        os.makedirs(outputs[name])

    bundle_digest = reference.bundle_digest(bundle)
    env = clean_environment(bundle, scratch, manifest)
    if manifest.get("build"):
        # Like the host: run the build command once, into a folder the step then sees as ZENML_BUILD_DIR.
        build_dir = os.path.join(workdir, "build")
        os.makedirs(build_dir)
        build_env = dict(env, ZENML_BUILD_DIR=build_dir)
        built = subprocess.run(["/bin/sh", "-c", manifest["build"]], cwd=scratch, env=build_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        assert built.returncode == 0, "build failed: " + built.stderr.decode("utf-8", "replace")
        env["ZENML_BUILD_DIR"] = build_dir
    key = reference.cache_key(
        bundle_digest, manifest, resolved,
        {name: [a["digest"] for a in items] for name, items in artifacts.items()}, os.environ)
    request = {
        "contract": 1,
        "pipeline": {"name": "test", "version": reference.canonical_digest({"test": True})},
        "run": {"id": "test-run"},
        "step": {"name": step_name, "bundle": manifest["name"], "bundle_version": str(manifest["version"]),
                 "bundle_digest": bundle_digest, "cache_key": key},
        "config": resolved,
        "inputs": artifacts,
        "outputs": {name: {"path": path, "type": _type(manifest["outputs"][name])} for name, path in outputs.items()},
        "scratch": scratch,
        "seed": reference.seed_from_cache_key(key),
    }
    jsonschema.validate(request, load_schema("request"))
    if request_changes:
        request_changes(request)
    text = (encode or json.dumps)(request)

    process = subprocess.run(
        command_line(bundle, manifest, env), input=text.encode("utf-8"), cwd=scratch, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, start_new_session=True)
    result = StepResult(process.returncode, process.stdout.decode("utf-8", "replace"),
                        process.stderr.decode("utf-8", "replace"), request, outputs)
    _check(result, manifest, outputs_parent)
    return result


def _type(spec):
    return spec if isinstance(spec, str) else spec["type"]


def _check(result, manifest, outputs_parent):
    problems = result.problems
    declared = set(manifest.get("outputs") or {})
    if result.returncode != 0:
        problems.append("exit code %d" % result.returncode)
    problems.extend(_check_response(result, declared))
    for entry in sorted(os.listdir(outputs_parent)):
        if entry not in declared:
            problems.append("undeclared output written: %s" % entry)
    for name, directory in sorted(result.outputs.items()):
        if not os.path.isdir(directory) or not os.listdir(directory):
            problems.append("declared output %r left empty" % name)
        else:
            problems.extend(escaping_links(directory))


def _check_response(result, declared):
    try:
        result.response = json.loads(result.stdout)
    except ValueError:
        return ["stdout is not one JSON object: %r" % result.stdout[:200]]
    try:
        jsonschema.validate(result.response, load_schema("response"))
    except jsonschema.ValidationError as error:
        return ["invalid response: %s" % error.message]
    problems = ["response names undeclared output %r" % name
                for name in result.response.get("outputs", {}) if name not in declared]
    if result.response["status"] != "ok":
        problems.append("status %s: %s" % (result.response["status"], result.response.get("message")))
    return problems


def escaping_links(root):
    """Symbolic links under root that are absolute or lead outside root (lexically)."""
    found = []
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                target = os.readlink(path)
                resolved = os.path.normpath(os.path.join(directory, target))
                if os.path.isabs(target) or not (resolved + os.sep).startswith(root.rstrip(os.sep) + os.sep):
                    found.append("symbolic link escapes its output: %s -> %s" % (path, target))
            elif not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                found.append("not a file, directory or link: %s" % path)
    return found


def store(output_dir, store_dir, properties=None):
    """Moves an output into a content-addressed folder like the host's store; returns its path."""
    digest = reference.tree_digest(output_dir)
    target = os.path.join(store_dir, digest.split(":", 1)[1])
    if not os.path.exists(target):
        shutil.copytree(output_dir, target, symlinks=True)
        with open(target + ".properties.json", "w", encoding="utf-8") as handle:
            json.dump(properties or {}, handle)
        make_read_only(target)
    return target


def make_read_only(root):
    for directory, names, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & ~0o222)
    for directory, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        os.chmod(directory, os.stat(directory).st_mode & ~0o222)


def make_writable(root):
    for directory, names, files in os.walk(root):
        os.chmod(directory, os.stat(directory).st_mode | 0o700)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o200)
