#!/bin/sh
# normalize's entrypoint: runs the program the bundle's `build:` command compiled from main.c.
#
# The host builds the bundle once per bundle digest and platform (see step.yaml) and passes the
# build's folder as ZENML_BUILD_DIR. The request arrives on stdin; it is saved to a file in the
# scratch directory and its path handed to the program. Everything but the response goes to
# stderr: stdout carries only the one JSON response.
set -eu

work=$(mktemp -d "${TMPDIR:-/tmp}/normalize.XXXXXX")
cat > "$work/request.json"
exec "$ZENML_BUILD_DIR/normalize" "$work/request.json"
