#!/bin/sh
# normalize's entrypoint: compiles main.c with the system C compiler and runs it.
#
# The host starts this script with a fresh scratch directory as the working directory and
# TMPDIR inside it, so the compiled program never lands in the bundle (whose digest covers
# every file) and is cleaned up with the scratch directory. The request arrives on stdin; it is
# saved to a file and its path handed to the program. Everything but the response goes to
# stderr: stdout carries only the one JSON response.
set -eu

bundle=${ZENML_BUNDLE_DIR:-$(cd "$(dirname "$0")" && pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/normalize.XXXXXX")

cat > "$work/request.json"

echo "normalize: compiling $bundle/main.c with cc -O2" >&2
if ! cc -O2 -std=c99 -o "$work/normalize" "$bundle/main.c" >&2; then
    echo "normalize: error: compiling main.c failed (is a C compiler installed as 'cc'?)" >&2
    exit 1
fi

exec "$work/normalize" "$work/request.json"
