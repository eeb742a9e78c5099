#!/usr/bin/env bash
# Install the headless test clients used by reel's integration tests:
#   - Debian chromium (/usr/bin/chromium) for MSE playback via playwright-core
#   - npm packages in tests/clients (hls.js, dashjs, shaka-player, playwright-core, tus-js-client) from package-lock.json
#   - a Python venv at tests/clients/.venv with m3u8, mpegdash, PyJWT... (requirements.txt)
# Idempotent and quiet when everything is already in place.
# Env: REEL_SKIP_CHROMIUM=1 skips the apt step (e.g. on a machine without root).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$ROOT/tests/clients"
CHROMIUM=/usr/bin/chromium

die() { echo "install-test-clients: ERROR: $*" >&2; exit 1; }
say() { echo "install-test-clients: $*" >&2; }
hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

[ -f "$CLIENTS/package.json" ] || die "missing $CLIENTS/package.json"

# --- 1. chromium (Debian package; playwright's own browser download is not reachable) ---
if [ ! -x "$CHROMIUM" ] && [ "${REEL_SKIP_CHROMIUM:-0}" != 1 ]; then
    command -v apt-get >/dev/null || die "$CHROMIUM missing and apt-get not available"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "$CHROMIUM missing; need root (or sudo) to apt-get install chromium"
        SUDO="sudo"
    fi
    say "installing Debian chromium (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
    $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
        || die "apt-get install chromium failed"
    [ -x "$CHROMIUM" ] || die "chromium installed but $CHROMIUM not found"
    say "$("$CHROMIUM" --version 2>/dev/null || echo chromium installed)"
fi

# --- 2. node modules ---
command -v node >/dev/null || die "node not found (need node >= 18)"
command -v npm  >/dev/null || die "npm not found"
NM="$CLIENTS/node_modules"
if [ -f "$CLIENTS/package-lock.json" ]; then
    WANT="$(hash_of "$CLIENTS/package.json" "$CLIENTS/package-lock.json")"
else
    WANT="$(hash_of "$CLIENTS/package.json")"
fi
HAVE="$(cat "$NM/.reel-install-stamp" 2>/dev/null || true)"
if [ ! -d "$NM" ] || [ "$WANT" != "$HAVE" ]; then
    say "installing npm packages in tests/clients..."
    (
        cd "$CLIENTS"
        export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
        if [ -f package-lock.json ]; then
            npm ci --no-fund --no-audit --loglevel=error
        else
            npm install --no-fund --no-audit --loglevel=error
        fi
    ) >/dev/null || die "npm install in $CLIENTS failed"
    # re-hash: `npm install` may have just written the lockfile
    if [ -f "$CLIENTS/package-lock.json" ]; then
        WANT="$(hash_of "$CLIENTS/package.json" "$CLIENTS/package-lock.json")"
    fi
    [ -f "$NM/hls.js/dist/hls.min.js" ] || die "hls.js not installed"
    [ -f "$NM/shaka-player/dist/shaka-player.compiled.js" ] || die "shaka-player not installed"
    [ -f "$NM/dashjs/dist/modern/umd/dash.all.min.js" ] || die "dashjs not installed"
    [ -f "$NM/playwright-core/package.json" ] || die "playwright-core not installed"
    echo "$WANT" > "$NM/.reel-install-stamp"
fi

# --- 3. python venv ---
VENV="$CLIENTS/.venv"
REQ="$CLIENTS/requirements.txt"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "$PY not found"
WANT="$(hash_of "$REQ")"
HAVE="$(cat "$VENV/.reel-install-stamp" 2>/dev/null || true)"
if [ ! -x "$VENV/bin/python" ] || [ "$WANT" != "$HAVE" ]; then
    say "creating python venv in tests/clients/.venv..."
    if [ ! -x "$VENV/bin/python" ]; then
        rm -rf "$VENV"
        "$PY" -m venv "$VENV" || die "python venv creation failed ($PY -m venv)"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" \
        || die "pip install -r $REQ failed"
    "$VENV/bin/python" -c 'import m3u8, mpegdash, jwt' || die "m3u8/mpegdash/jwt import failed in venv"
    echo "$WANT" > "$VENV/.reel-install-stamp"
fi
