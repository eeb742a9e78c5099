#!/usr/bin/env bash
# Self-test of the test clients on a freshly generated ffmpeg fixture (no reel needed):
# 10 s CMAF HLS + DASH served with CORS on 127.0.0.1, then
#   check-manifests.py, play-hls.mjs and play-shaka.mjs at --rate 1 (or $RATE), and 404s that must fail.
# usage: tests/clients/selftest.sh   (after scripts/install-test-clients.sh)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RATE="${RATE:-1}"
WORK="$(mktemp -d)"
SRV_PID=""
cleanup() { [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$HERE/make-fixture.sh" "$WORK/fx" 10
"$HERE/.venv/bin/python" "$HERE/serve-cors.py" "$WORK/fx" 0 > "$WORK/port" &
SRV_PID=$!
for _ in $(seq 50); do grep -q '^PORT ' "$WORK/port" 2>/dev/null && break; sleep 0.1; done
PORT="$(awk '/^PORT /{print $2}' "$WORK/port")"
[ -n "$PORT" ] || { echo "selftest: server did not start" >&2; exit 1; }
BASE="http://127.0.0.1:$PORT"
pass=0; fail=0
ok()  { echo "ok   - $*"; pass=$((pass+1)); }
bad() { echo "FAIL - $*"; fail=$((fail+1)); }

if "$HERE/.venv/bin/python" "$HERE/check-manifests.py" "$BASE/hls/master.m3u8" "$BASE/dash/manifest.mpd" > "$WORK/cm.json"; then
    "$HERE/.venv/bin/python" - "$WORK/cm.json" <<'PY' && ok "check-manifests" || bad "check-manifests content"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["variants"]) >= 2, d["variants"]
assert all(abs(v["duration_sum"] - 10) < 0.1 for v in d["variants"]), d["variants"]
sets = d["mpd"]["adaptation_sets"]
assert {s["content_type"] for s in sets} == {"video", "audio"}, sets
for s in sets:
    for r in s["representations"]:
        assert abs(r["timeline_duration_s"] - 10) < 0.1, r
PY
else
    bad "check-manifests exit code"
fi

t0=$(date +%s.%N)
if node "$HERE/play-hls.mjs" "$BASE/hls/master.m3u8" --timeout 60 --rate "$RATE" > "$WORK/play.json"; then
    t1=$(date +%s.%N)
    "$HERE/.venv/bin/python" - "$WORK/play.json" <<'PY' && ok "play-hls rate $RATE ($(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s)" || bad "play-hls content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ended"], d
assert 290 <= d["decodedFrames"] <= 310, d["decodedFrames"]
assert not any(e["fatal"] for e in d["errors"]), d["errors"]
PY
else
    bad "play-hls exit code: $(cat "$WORK/play.json")"
fi

if node "$HERE/play-hls.mjs" "$BASE/hls/missing.m3u8" --timeout 20 > "$WORK/404.json"; then
    bad "play-hls on a 404 exited 0"
else
    grep -q manifestLoadError "$WORK/404.json" && ok "play-hls 404 -> exit 1" || bad "play-hls 404 JSON: $(cat "$WORK/404.json")"
fi

t0=$(date +%s.%N)
if node "$HERE/play-shaka.mjs" "$BASE/dash/manifest.mpd" --timeout 60 --rate "$RATE" > "$WORK/shaka.json"; then
    t1=$(date +%s.%N)
    "$HERE/.venv/bin/python" - "$WORK/shaka.json" <<'PY' && ok "play-shaka rate $RATE ($(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s)" || bad "play-shaka content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ended"], d
assert 290 <= d["decodedFrames"] <= 310, d["decodedFrames"]
assert len(d["variants"]) == 2, d["variants"]
assert not any(e["fatal"] for e in d["errors"]), d["errors"]
PY
else
    bad "play-shaka exit code: $(cat "$WORK/shaka.json")"
fi

if node "$HERE/play-shaka.mjs" "$BASE/dash/missing.mpd" --timeout 20 > "$WORK/shaka-404.json"; then
    bad "play-shaka on a 404 exited 0"
else
    grep -q '"httpStatus":404' "$WORK/shaka-404.json" && ok "play-shaka 404 -> exit 1" || bad "play-shaka 404 JSON: $(cat "$WORK/shaka-404.json")"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
