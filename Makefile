# reel: the two commands of the README (make run, make test), plus bench and lint.
SHELL := /bin/bash
CARGO ?= cargo
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./reel-data
APT_PACKAGES := ffmpeg postgresql python3

.PHONY: run test bench lint deps build web screenshots

# Installs the system packages reel and its tests need (as root, with apt-get).
deps:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing packages:$$missing; install them with apt-get as root" >&2; exit 1; fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(CARGO) build --release --locked -p reel

# The web app (web/dist, served by `reel serve`), built with the npm registry's packages.
web/node_modules/.stamp: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web: deps web/node_modules/.stamp
	cd web && npm run build --silent

# The main job on embedded defaults: SQLite and a local object store under $(DATA_DIR).
run: build web
	REEL_WEB_DIR=web/dist ./target/release/reel serve --listen $(LISTEN) --data-dir $(DATA_DIR)

# Every test: the HTTP cache test suite against `reel edge`, unit tests, the
# engine suite on SQLite and a throwaway PostgreSQL, and the integration suite
# that drives the real binary.
test: deps web
	scripts/install-test-clients.sh
	$(CARGO) build --locked --workspace --all-targets
	scripts/cache-tests.sh
	mkdir -p target
	set -o pipefail; scripts/with-postgres.sh $(CARGO) test --locked --workspace --all-targets --no-fail-fast 2>&1 | tee target/test.log
	@awk '/^test result:/ {passed += $$4; failed += $$6} END {printf "tests: %d passed, %d failed\n", passed, failed; exit failed > 0}' target/test.log

# Benchmarks (not tests); paste their tables into bench/RESULTS.md.
bench: deps
	$(CARGO) build --release --locked -p reel-bench -p reel
	REEL_PG_DURABLE=1 scripts/with-postgres.sh ./target/release/reel-bench engine
	./target/release/reel-bench pipeline 60
	./target/release/reel-bench codecs 60
	./target/release/reel-bench upload 2
	@command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; } \
	  || { echo "reel-bench edge needs nginx: apt-get install nginx-light as root" >&2; exit 1; }
	./target/release/reel-bench edge 20 800 3

# Screenshots of the library, upload and watch pages at desktop and phone widths.
screenshots: build web
	scripts/install-test-clients.sh
	scripts/screenshots.sh screenshots

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
