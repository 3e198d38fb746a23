# json.awk: prints every scalar of one JSON document as a line "PATH<TAB>TYPE<TAB>VALUE".
#
#   LC_ALL=C awk -f json.awk request.json
#
# PATH joins object keys and array indices with dots (inputs.table.0.path); TYPE is string,
# number, boolean or null; VALUE is the decoded string (escapes such as \/ and \u00e9
# resolved) or the literal text of a number, true, false or null. Key order in the document does not matter. Run it with LC_ALL=C so that
# awk handles bytes: strings are copied byte for byte and \u escapes become UTF-8 bytes.
# Limitation: a string containing a newline or a tab would break the line format; the step
# contract's paths and names do not contain them.
#
# Written for POSIX awk (tested with mawk, gawk and busybox awk); part of the report bundle so
# that the bundle is self-contained.

{ text = text $0 "\n" }

END {
    pos = 1
    n = length(text)
    hexdigits = "0123456789abcdef"
    skip_ws()
    parse_value("")
    skip_ws()
    if (pos <= n) die("unexpected text after the JSON value")
}

function die(message) {
    printf "json.awk: %s at byte %d\n", message, pos > "/dev/stderr"
    exit 1
}

function skip_ws(    c) {
    while (pos <= n) {
        c = substr(text, pos, 1)
        if (c != " " && c != "\t" && c != "\n" && c != "\r") return
        pos++
    }
}

function emit(path, type, value) {
    print path "\t" type "\t" value
}

function join(path, key) {
    return path == "" ? key : path "." key
}

function parse_value(path,    c, start, literal) {
    c = substr(text, pos, 1)
    if (c == "{") { parse_object(path); return }
    if (c == "[") { parse_array(path); return }
    if (c == "\"") { emit(path, "string", parse_string()); return }
    start = pos
    while (pos <= n && index("+-.0123456789eEtrufalsn", substr(text, pos, 1)) > 0) pos++
    if (pos == start) die("expected a JSON value")
    literal = substr(text, start, pos - start)
    if (literal == "true" || literal == "false") emit(path, "boolean", literal)
    else if (literal == "null") emit(path, "null", literal)
    else if (literal ~ /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) emit(path, "number", literal)
    else die("bad literal '" literal "'")
}

function parse_object(path,    key, c) {
    pos++
    skip_ws()
    if (substr(text, pos, 1) == "}") { pos++; return }
    while (1) {
        if (substr(text, pos, 1) != "\"") die("expected a key")
        key = parse_string()
        skip_ws()
        if (substr(text, pos, 1) != ":") die("expected ':'")
        pos++
        skip_ws()
        parse_value(join(path, key))
        skip_ws()
        c = substr(text, pos, 1)
        pos++
        if (c == "}") return
        if (c != ",") die("expected ',' or '}'")
        skip_ws()
    }
}

function parse_array(path,    i, c) {
    pos++
    skip_ws()
    if (substr(text, pos, 1) == "]") { pos++; return }
    for (i = 0; ; i++) {
        parse_value(join(path, i))
        skip_ws()
        c = substr(text, pos, 1)
        pos++
        if (c == "]") return
        if (c != ",") die("expected ',' or ']'")
        skip_ws()
    }
}

# Reads the string at pos (its opening quote) and returns it decoded.
function parse_string(    out, c, e, cp, low, rest) {
    pos++
    out = ""
    while (pos <= n) {
        # Copy a run of plain characters at once.
        rest = substr(text, pos, 256)
        if (match(rest, /^[^"\\]+/)) {
            out = out substr(rest, 1, RLENGTH)
            pos += RLENGTH
            continue
        }
        c = substr(text, pos, 1)
        if (c == "\"") { pos++; return out }
        e = substr(text, pos + 1, 1)
        pos += 2
        if (e == "\"" || e == "\\" || e == "/") out = out e
        else if (e == "n") out = out "\n"
        else if (e == "t") out = out "\t"
        else if (e == "r") out = out "\r"
        else if (e == "b") out = out "\b"
        else if (e == "f") out = out "\f"
        else if (e == "u") {
            cp = hex4(substr(text, pos, 4))
            pos += 4
            if (cp >= 55296 && cp <= 56319 && substr(text, pos, 2) == "\\u") {
                low = hex4(substr(text, pos + 2, 4))
                if (low >= 56320 && low <= 57343) {
                    cp = 65536 + (cp - 55296) * 1024 + (low - 56320)
                    pos += 6
                }
            }
            out = out utf8(cp)
        }
        else die("bad escape in a string")
    }
    die("unterminated string")
}

function hex4(s,    i, d, v) {
    v = 0
    for (i = 1; i <= 4; i++) {
        d = index(hexdigits, tolower(substr(s, i, 1)))
        if (d == 0) die("bad \\u escape")
        v = v * 16 + d - 1
    }
    return v
}

function utf8(cp) {
    if (cp < 128) return sprintf("%c", cp)
    if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
    if (cp < 65536) return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
    return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64, 128 + int(cp / 64) % 64, 128 + cp % 64)
}
