"""Reference implementations, in plain Python, of the digests that SPEC.md defines.

They exist so that the examples in SPEC.md can be checked, and so that implementers in other
languages have a short, readable model to compare against. The host's own implementation is
`Sources/ZenMLCore/CanonicalJSON.swift` and `Sources/ZenMLCore/TreeDigest.swift`.
"""

import hashlib
import json
import math
import os
import stat

BUNDLE_EXCLUDES = frozenset({"__pycache__", ".git", ".DS_Store"})


def _number(value):
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "null"
    if value == int(value) and abs(value) < 2**63:
        return str(int(value))  # 1.0 -> "1", -0.0 -> "0"
    return repr(value)  # shortest round-trip form: 0.1, 1e-07, 1e+16


def _string(text):
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical_json(value):
    """The canonical JSON text of a value (see SPEC.md, "Canonical JSON")."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(_string(k) + ":" + canonical_json(value[k]) for k in keys) + "}"
    raise TypeError("not a JSON value: %r" % (value,))


def sha256_text(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_digest(value):
    return sha256_text(canonical_json(value).encode("utf-8"))


def tree_digest(root, excluding=frozenset()):
    """The Merkle tree digest of a directory (see SPEC.md, "Tree digests")."""
    names = sorted((n for n in os.listdir(root) if n not in excluding), key=lambda n: os.fsencode(n))
    nodes = []
    for name in names:
        path = os.path.join(root, name)
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            with open(path, "rb") as handle:
                digest = sha256_text(handle.read())
            nodes.append({"name": name, "type": "file", "executable": bool(info.st_mode & 0o111),
                          "size": info.st_size, "digest": digest})
        elif stat.S_ISDIR(info.st_mode):
            nodes.append({"name": name, "type": "directory", "digest": tree_digest(path, excluding)})
        elif stat.S_ISLNK(info.st_mode):
            nodes.append({"name": name, "type": "symlink", "target": os.readlink(path)})
        else:
            raise ValueError("%s: only files, directories and symbolic links can be hashed" % path)
    return canonical_digest(nodes)


def _tar_header(name, mode, size, kind, link=b""):
    """One ustar header block (plus a pax block before it when a name does not fit in 100 bytes)."""
    def octal(value, width):
        return b"%0*o\0" % (width - 1, value)

    records = b""
    if len(name) > 100:
        records += _pax_record(b"path", name)
    if len(link) > 100:
        records += _pax_record(b"linkpath", link)
    prefix = b""
    if records:
        prefix = _tar_header(b"././@PaxHeader", 0o644, len(records), b"x") + records
        prefix += b"\0" * (-len(records) % 512)
    block = bytearray(512)
    block[0:len(name[:100])] = name[:100]
    block[100:108] = octal(mode, 8)
    block[108:116] = octal(0, 8)
    block[116:124] = octal(0, 8)
    block[124:136] = octal(size, 12)
    block[136:148] = octal(0, 12)
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[157:157 + len(link[:100])] = link[:100]
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[329:337] = octal(0, 8)
    block[337:345] = octal(0, 8)
    block[148:156] = b"%06o\0 " % sum(block)
    return prefix + bytes(block)


def _pax_record(key, value):
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _bundle_entries(root, relative, real_root, depth=0):
    """(path, kind, source) for every entry, links leaving the bundle replaced by what they point to."""
    entries = []
    directory = os.path.join(root, relative) if relative else root
    for name in os.listdir(directory):
        if name in BUNDLE_EXCLUDES:
            continue
        inside = relative + "/" + name if relative else name
        path = os.path.join(directory, name)
        if os.path.islink(path):
            target = os.readlink(path)
            real = os.path.realpath(path)
            if not os.path.exists(real):
                raise ValueError("%s: the link points to nothing" % path)
            if not target.startswith("/") and (real == real_root or real.startswith(real_root + os.sep)):
                entries.append((inside, "symlink", target))
                continue
            path = real
        if os.path.isdir(path):
            entries.append((inside, "directory", path))
            for child_path, kind, source in _bundle_entries(path, "", real_root, depth + 1):
                entries.append((inside + "/" + child_path, kind, source))
        else:
            entries.append((inside, "file", path))
    return entries


def bundle_archive(bundle):
    """The bundle's deterministic archive (see SPEC.md, "Bundle archives"): its SHA-256 is the bundle digest."""
    entries = sorted(_bundle_entries(bundle, "", os.path.realpath(bundle)), key=lambda e: e[0].encode("utf-8"))
    out = b""
    for path, kind, source in entries:
        name = path.encode("utf-8")
        if kind == "directory":
            out += _tar_header(name + b"/", 0o755, 0, b"5")
        elif kind == "symlink":
            out += _tar_header(name, 0o777, 0, b"2", source.encode("utf-8"))
        else:
            with open(source, "rb") as handle:
                data = handle.read()
            mode = 0o755 if os.stat(source).st_mode & 0o111 else 0o644
            out += _tar_header(name, mode, len(data), b"0") + data + b"\0" * (-len(data) % 512)
    return out + b"\0" * 1024


def bundle_digest(bundle):
    return sha256_text(bundle_archive(bundle))


def content_digest(path):
    """The digest of what a `format: path` config value names: a file's bytes or a folder's tree."""
    if os.path.isdir(path):
        return tree_digest(path)
    with open(path, "rb") as handle:
        return sha256_text(handle.read())


def cache_key(bundle_digest_text, manifest, resolved_config, input_digests, environ, base_directory="."):
    """The cache key of one step execution (SPEC.md, "The cache key"; the host's is
    StepAction.canonicalForm in Sources/ZenMLCache/CacheKey.swift).

    manifest        -- the manifest as a dict (entrypoint, args, config, env).
    resolved_config -- the config with defaults applied, as written in the pipeline.
    input_digests   -- {input name: [artifact digest, ...]} for every declared input, in the
                       pipeline's order ([] for an unwired optional input).
    environ         -- the host's environment (for the declared `env` variables).
    base_directory  -- the pipeline file's folder, against which relative paths are read.
    """
    properties = (manifest.get("config") or {}).get("properties") or {}
    config = dict(resolved_config)
    for key, schema in properties.items():
        if schema.get("format") == "path" and isinstance(config.get(key), str):
            config[key] = content_digest(os.path.join(base_directory, config[key]))
    key = {
        "contract": 1,
        "bundle": bundle_digest_text,
        "entrypoint": _text(manifest["entrypoint"]),
        "args": [_text(a) for a in manifest.get("args", [])],
        "config": config,
        "inputs": {name: list(digests) for name, digests in input_digests.items()},
        "env": {name: sha256_text(environ[name].encode("utf-8"))
                for name in manifest.get("env", []) if name in environ},
    }
    return canonical_digest(key)


def _text(value):
    # The host reads numbers written where a string belongs as their canonical JSON text.
    return value if isinstance(value, str) else canonical_json(value)


def seed_from_cache_key(key):
    """The request's seed: the first 13 hex digits (52 bits) of the cache key."""
    return int(key[len("sha256:"):][:13], 16)
