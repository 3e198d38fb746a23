"""Checks the reference digests (reference.py) against the worked examples in SPEC.md.

The values below were also computed with the host's Swift code (CanonicalJSON.swift,
TreeDigest.swift); if one of these tests fails after a change to SPEC.md or to the host,
the two have drifted apart.
"""

import json
import os

import pytest

import reference

SPEC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "SPEC.md")

CANONICAL_INPUT = ('{"name": "café/au lait", "values": [1.0, 0.1, 1e-7, 1.5e300, -0.0, 100], "ok": true, '
                   '"note": null, "Zeta": "tab\\there", "alpha": {"b": 2, "a": 1}}')
CANONICAL_OUTPUT = ('{"Zeta":"tab\\there","alpha":{"a":1,"b":2},"name":"café/au lait","note":null,'
                    '"ok":true,"values":[1,0.1,1e-07,1.5e+300,0,100]}')
CANONICAL_DIGEST = "sha256:ccb3eb417719c7330b19c35ef71de02c56b9f5921b0c9fe220f9f0cd296813b8"

HELLO_DIGEST = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
DATA_DIGEST = "sha256:17988dff63edfcd9556209b654d414a7d244ca863d4798bcb2644ad6101e6cca"
TREE_DIGEST = "sha256:e1feec4ff884a6a6b96b95c94c18aa86be7d5e55e8e4be0d4a37065dbf27f35c"
# The example tree's bundle digest: the SHA-256 of its archive (SPEC.md, "Bundle archives").
BUNDLE_DIGEST = "sha256:36700ff15a4c2ff96ae148e531b7aa09ca71b0cd2fb527207518cf8faef3d11e"
# With a step.yaml, links inside and out, and names longer than 100 bytes (pax headers); the
# Swift host's `zenml-run bundle pack` writes the same bytes (BundleArchiveTests checks this value).
SHARING_BUNDLE_DIGEST = "sha256:ea8ad3a1c928ca33f5884f96ff7d1aa690cb2e8fc6cdcf72b1431f039ca88429"
EMPTY_TREE_DIGEST = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"


def spec_text():
    with open(SPEC, encoding="utf-8") as handle:
        return handle.read()


def test_canonical_json_example():
    value = json.loads(CANONICAL_INPUT)
    assert reference.canonical_json(value) == CANONICAL_OUTPUT
    assert reference.canonical_digest(value) == CANONICAL_DIGEST


@pytest.mark.parametrize("number,text", [
    (1, "1"), (1.0, "1"), (-0.0, "0"), (100.0, "100"), (0.1, "0.1"), (1e-7, "1e-07"), (0.0001, "0.0001"),
    (1e-05, "1e-05"), (123456789.125, "123456789.125"), (2.0**53 - 1, "9007199254740991"),
    (2.0**53, "9007199254740992"), (1e16, "10000000000000000"), (2.5e16, "25000000000000000"), (1e19, "1e+19"), (1.5e300, "1.5e+300"), (2**63 - 1, "9223372036854775807"),
    (float("nan"), "null"), (float("inf"), "null"),
])
def test_canonical_numbers(number, text):
    assert reference.canonical_json(number) == text


def test_canonical_strings_escape_only_quote_backslash_and_controls():
    assert reference.canonical_json("a/b\"c\\d\n\t\x01\x7fé\u2028") == '"a/b\\"c\\\\d\\n\\t\\u0001\x7fé\u2028"'


def test_keys_sort_by_utf8_bytes():
    assert reference.canonical_json({"é": 1, "z": 2, "B": 3, "a": 4}) == '{"B":3,"a":4,"z":2,"é":1}'


def make_example_tree(root):
    os.makedirs(os.path.join(root, "data"))
    with open(os.path.join(root, "run.sh"), "w") as handle:
        handle.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(root, "run.sh"), 0o755)
    with open(os.path.join(root, "data", "a.txt"), "w") as handle:
        handle.write("hello\n")
    os.chmod(os.path.join(root, "data", "a.txt"), 0o644)


def test_tree_digest_example(tmp_path):
    root = str(tmp_path / "example")
    make_example_tree(root)
    assert reference.sha256_text(b"hello\n") == HELLO_DIGEST
    assert reference.tree_digest(os.path.join(root, "data")) == DATA_DIGEST
    assert reference.tree_digest(root) == TREE_DIGEST


def test_only_the_execute_bit_counts(tmp_path):
    root = str(tmp_path / "example")
    make_example_tree(root)
    os.chmod(os.path.join(root, "run.sh"), 0o700)  # other bits change, still executable
    os.chmod(os.path.join(root, "data", "a.txt"), 0o600)
    os.utime(os.path.join(root, "data", "a.txt"), (0, 0))
    assert reference.tree_digest(root) == TREE_DIGEST
    os.chmod(os.path.join(root, "run.sh"), 0o644)
    assert reference.tree_digest(root) != TREE_DIGEST


def test_bundle_digest_skips_caches_and_vcs(tmp_path):
    root = str(tmp_path / "example")
    make_example_tree(root)
    for name in ("__pycache__", ".git", os.path.join("data", "__pycache__")):
        os.makedirs(os.path.join(root, name))
        with open(os.path.join(root, name, "junk"), "w") as handle:
            handle.write("junk")
    with open(os.path.join(root, ".DS_Store"), "w") as handle:
        handle.write("junk")
    assert reference.bundle_digest(root) == BUNDLE_DIGEST
    assert reference.tree_digest(root) != TREE_DIGEST


def make_sharing_bundle(base):
    root = os.path.join(base, "example")
    make_example_tree(root)
    os.makedirs(os.path.join(base, "shared"))
    with open(os.path.join(base, "shared", "sdk.py"), "w") as handle:
        handle.write("SDK\n")
    os.symlink("../shared/sdk.py", os.path.join(root, "sdk.py"))
    os.symlink("data/a.txt", os.path.join(root, "alias"))
    os.makedirs(os.path.join(root, "d" * 60))
    with open(os.path.join(root, "d" * 60, "f" * 60), "w") as handle:
        handle.write("x")
    with open(os.path.join(root, "step.yaml"), "w") as handle:
        handle.write('name: example\nversion: "1.0.0"\nentrypoint: run.sh\n')
    return root


def test_bundle_archive_links_and_long_names(tmp_path):
    import tarfile
    root = make_sharing_bundle(str(tmp_path))
    assert reference.bundle_digest(root) == SHARING_BUNDLE_DIGEST
    archive = tmp_path / "bundle.tar"
    archive.write_bytes(reference.bundle_archive(root))
    with tarfile.open(archive) as handle:
        members = {m.name: m for m in handle.getmembers()}
    assert members["alias"].issym() and members["alias"].linkname == "data/a.txt"
    assert members["sdk.py"].isfile(), "a link out of the bundle is archived as its content"
    assert members["d" * 60 + "/" + "f" * 60].size == 1
    assert {(m.uid, m.gid, m.mtime, m.uname, m.gname) for m in members.values()} == {(0, 0, 0, "", "")}


def test_empty_directory(tmp_path):
    assert reference.tree_digest(str(tmp_path)) == EMPTY_TREE_DIGEST


VOCABULARY_DIGEST = "sha256:f641fdcd8af73b2f6334ab63c13d2eb857cd16f2aa4ea0ba20ba0eb9627918b5"
CACHE_KEY_EXAMPLE = (
    '{"args":["${BUNDLE}/main.py","1"],"bundle":"sha256:' + "b" * 64 + '","config":{"rows":100,"scale":2.5,'
    '"vocabulary":"' + VOCABULARY_DIGEST + '"},"contract":1,"entrypoint":"python3","env":{"MY_TOKEN":'
    '"sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"},"inputs":{"table":["sha256:'
    + "d" * 64 + '"]}}')
CACHE_KEY_DIGEST = "sha256:18acda0aee2c7ab8f04a861a7ae06920e3f5e716a0a4c3584e7986ba6e5a8449"


def test_cache_key_example(tmp_path):
    """The example in SPEC.md: a `format: path` file, a wired input, one declared variable set, one unset."""
    (tmp_path / "vocab.txt").write_bytes(b"cat\ndog\n")
    manifest = {"entrypoint": "python3", "args": ["${BUNDLE}/main.py", 1], "env": ["MY_TOKEN", "UNSET_VAR"],
                "config": {"properties": {"vocabulary": {"type": "string", "format": "path"}}}}
    key = reference.cache_key("sha256:" + "b" * 64, manifest, {"rows": 100, "scale": 2.5, "vocabulary": "vocab.txt"},
                              {"table": ["sha256:" + "d" * 64]}, {"MY_TOKEN": "secret"}, str(tmp_path))
    assert reference.content_digest(str(tmp_path / "vocab.txt")) == VOCABULARY_DIGEST
    assert reference.canonical_json(json.loads(CACHE_KEY_EXAMPLE)) == CACHE_KEY_EXAMPLE
    assert key == CACHE_KEY_DIGEST
    assert reference.seed_from_cache_key(CACHE_KEY_DIGEST) == 434090745455303


def test_seed_from_cache_key():
    key = "sha256:5e1ecee06a7fc06f305ae5c12acfe7a7f67b8ece7af76932ed3afab00c3c6921"
    assert reference.seed_from_cache_key(key) == 1655782605498364
    assert reference.seed_from_cache_key(key) < 2**52


SPEC_VALUES = {
    "canonical JSON": CANONICAL_OUTPUT, "canonical digest": CANONICAL_DIGEST, "file digest": HELLO_DIGEST,
    "directory digest": DATA_DIGEST, "tree digest": TREE_DIGEST, "empty tree digest": EMPTY_TREE_DIGEST,
    "request seed": "1655782605498364", "cache key JSON": CACHE_KEY_EXAMPLE, "cache key": CACHE_KEY_DIGEST,
    "cache key seed": "434090745455303",
}


@pytest.mark.parametrize("value", SPEC_VALUES.values(), ids=SPEC_VALUES.keys())
def test_spec_shows_these_values(value):
    assert value in spec_text()


def test_example_request_seed_comes_from_its_cache_key():
    with open(os.path.join(os.path.dirname(SPEC), "examples", "request.json"), encoding="utf-8") as handle:
        request = json.load(handle)
    assert request["seed"] == reference.seed_from_cache_key(request["step"]["cache_key"])
