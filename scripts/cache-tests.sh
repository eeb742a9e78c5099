#!/usr/bin/env bash
# Runs the HTTP cache test suite (http-tests/cache-tests, vendored in
# tests/cache-tests; see its VENDORED.md) against `reel edge` in front of the
# suite's own origin, both on free loopback ports, and fails on any required
# failure, on fewer than MIN_REQUIRED_PASSES (140) required passes, or on a
# CDN-Cache-Control test that does not pass (tests/cache-tests/summarize.mjs).
# Needs node 18+ and npm (the suite's one dependency, undici, comes from the
# npm registry). Env: REEL (binary, default target/debug/reel), KEEP=1 keeps
# the scratch directory (results.json, origin.log, edge.log).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REEL="${REEL:-$ROOT/target/debug/reel}"
MIN_REQUIRED_PASSES="${MIN_REQUIRED_PASSES:-140}"
die() { echo "cache-tests: ERROR: $*" >&2; exit 1; }

[ -x "$REEL" ] || die "no reel binary at $REEL: run cargo build first (or set REEL)"
command -v node >/dev/null || die "node not found (node 18+ needed)"
command -v npm >/dev/null || die "npm not found"

SCRATCH="$(mktemp -d)"
ORIGIN_PID=""
EDGE_PID=""
cleanup() {
    for pid in "$EDGE_PID" "$ORIGIN_PID"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "cache-tests: kept $SCRATCH" >&2; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT

# wait_for_line FILE PATTERN PID WHAT: the first line of FILE matching PATTERN,
# polled until a 20 s deadline or until PID exits.
wait_for_line() {
    local deadline=$((SECONDS + 20)) line
    while :; do
        line="$(grep -m1 -E "$2" "$1" 2>/dev/null || true)"
        if [ -n "$line" ]; then echo "$line"; return; fi
        kill -0 "$3" 2>/dev/null || die "$4 exited: $(tail -5 "$1")"
        [ "$SECONDS" -lt "$deadline" ] || die "$4 did not start: $(tail -5 "$1")"
        sleep 0.1
    done
}

SUITE="$SCRATCH/cache-tests"
cp -r "$ROOT/tests/cache-tests" "$SUITE"
rm -rf "$SUITE/node_modules"
(cd "$SUITE" && npm ci --no-audit --no-fund --loglevel=error >"$SCRATCH/npm.log" 2>&1) \
    || die "npm ci failed: $(tail -5 "$SCRATCH/npm.log")"

# The suite's origin, on a port the OS picks.
(cd "$SUITE" && exec env npm_config_protocol=http npm_config_port=0 \
    npm_config_pidfile="$SCRATCH/origin.pid" node test-engine/server/server.mjs) \
    >"$SCRATCH/origin.log" 2>&1 &
ORIGIN_PID=$!
ORIGIN="$(wait_for_line "$SCRATCH/origin.log" '^Listening on http://127\.0\.0\.1:[0-9]+/' "$ORIGIN_PID" "the suite's origin" \
    | sed -E 's#^Listening on (http://[0-9.:]+)/.*#\1#')"

# reel edge in front of it. The suite sends its bookkeeping header Req-Num,
# and Vary tests name these request headers.
"$REEL" edge --listen 127.0.0.1:0 --name cache-tests --upstream "$ORIGIN" --cache-memory 64MiB \
    --vary-headers foo,bar,baz,abc,accept-language --forward-headers req-num \
    >"$SCRATCH/edge.log" 2>&1 &
EDGE_PID=$!
EDGE="$(wait_for_line "$SCRATCH/edge.log" 'listening on http://' "$EDGE_PID" "reel edge" \
    | sed -E 's#.*listening on (http://[0-9.:]+).*#\1#')"
echo "cache-tests: origin $ORIGIN, reel edge $EDGE" >&2

start=$SECONDS
(cd "$SUITE" && exec env npm_config_base="$EDGE" npm_config_id="" npm_package_config_id="" \
    node --no-warnings test-engine/cli.mjs) >"$SCRATCH/results.json" 2>"$SCRATCH/client.log" \
    || die "the suite's client failed: $(tail -5 "$SCRATCH/client.log")"
echo "cache-tests: ran in $((SECONDS - start)) s" >&2
(cd "$SUITE" && node --no-warnings summarize.mjs "$SCRATCH/results.json" "$MIN_REQUIRED_PASSES") \
    || { echo "cache-tests: edge log tail:" >&2; tail -20 "$SCRATCH/edge.log" >&2; exit 1; }
