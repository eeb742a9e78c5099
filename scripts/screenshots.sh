#!/usr/bin/env bash
# Screenshots of the web app's library, upload and watch pages at desktop and
# phone widths (`make screenshots`): starts a throwaway `reel serve` with the
# built app, ingests a generated video, and runs tests/clients/screenshots.mjs.
#   scripts/screenshots.sh OUT_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:-screenshots}")"
REEL="${REEL:-$ROOT/target/release/reel}"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$OUT"
ffmpeg -hide_banner -v error -y \
    -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 24 -c:v libx264 -preset ultrafast -c:a aac -shortest "$WORK/sample.mp4"
REEL_WEB_DIR="$ROOT/web/dist" REEL_ENCODE_PRESET=ultrafast \
    "$REEL" serve --listen 127.0.0.1:0 --workers 2 --data-dir "$WORK/data" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    grep -q "listening on http://" "$WORK/serve.log" && break
    sleep 0.1
done
URL="$(grep -o 'http://127[^ ]*' "$WORK/serve.log" | head -1)"
KEY="$(grep -o 'reel_[0-9a-f]*' "$WORK/serve.log" | head -1)"
[ -n "$URL" ] && [ -n "$KEY" ] || { echo "screenshots: reel serve did not start: $(cat "$WORK/serve.log")" >&2; exit 1; }
VIDEO="$("$REEL" ingest "$WORK/sample.mp4" --server "$URL" --api-key "$KEY" --title "Test pattern, 24 s" --wait --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
node "$ROOT/tests/clients/screenshots.mjs" "$URL" "$KEY" "$VIDEO" "$OUT"
echo "screenshots in $OUT:"
ls "$OUT"
