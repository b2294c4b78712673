#!/bin/sh
# Runs busted with the specs' temporary folders (data folders, logs,
# policies) under one root folder, and removes that folder afterwards.
#   run_busted.sh LUA BUSTED ARGS...
set -u
root=$(mktemp -d "${TMPDIR:-/tmp}/apig-spec-XXXXXX") || exit 1
trap 'rm -rf "$root"' EXIT
trap 'exit 130' INT TERM
lua=$1
busted=$2
shift 2
APIG_SPEC_TMP=$root "$lua" "$busted" "$@"
