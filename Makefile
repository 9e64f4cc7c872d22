# The two commands of a fresh machine: `make run` and `make test`.
# Everything they need is installed here: a virtualenv with the project and its test tools,
# and Mosquitto (Debian's package) for the tests of the production broker path.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# The dashboard's vendor files (from npm; see `vendor` below).
VENDOR       = backend/dashboard/static/vendor
VENDOR_FILES = $(VENDOR)/uPlot.iife.min.js $(VENDOR)/uPlot.min.css $(VENDOR)/uPlot.LICENSE
NPM_STAMP    = node_modules/.package-lock.json

.PHONY: run test bench venv clean

run: $(STAMP) vendor
	$(BIN)/mpfleet serve

# Worker processes (pytest-xdist), each test file in one of them: most tests wait on boards, brokers and servers
# rather than on a core, so three workers on two cores cut the suite's time by a third (`make test TEST_WORKERS=1`:
# one process, in file order).
TEST_WORKERS ?= 3

test: $(STAMP) vendor mosquitto socat chromium
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Figures, not assertions: each script prints its table with the targets.
bench: $(STAMP) bench-tools mosquitto
	$(BIN)/python bench/http_bench.py
	$(BIN)/python bench/mqtt_bench.py
	$(BIN)/python bench/firmware_memory.py
	$(BIN)/python bench/ota_bench.py
	$(BIN)/python bench/bulk_bench.py
	$(BIN)/python bench/events_bench.py

venv: $(STAMP)

# Reinstalled whenever pyproject.toml changes; the dashboard's vendor files are there first (package data).
$(STAMP): pyproject.toml | $(VENDOR_FILES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,firmware]'
	touch $@

# The load generators of the benchmarks, from Debian when missing: wrk (HTTP), mosquitto_pub (MQTT).
.PHONY: bench-tools mosquitto
bench-tools:
	@command -v wrk >/dev/null || { $(APT_INSTALL) wrk; }
	@command -v mosquitto_pub >/dev/null || { $(APT_INSTALL) mosquitto-clients; }

# The tests start their own Mosquitto from a generated config; the system service is never used.
mosquitto:
	@test -x /usr/sbin/mosquitto || { $(APT_INSTALL) mosquitto; }

# The dashboard's browser tests (tests/browser/) drive Debian's Chromium through Playwright; no browser download.
.PHONY: chromium
chromium:
	@test -x /usr/bin/chromium || { $(APT_INSTALL) chromium chromium-driver; }

# The deploy tests attach an emulated board's REPL to a pseudo-terminal, as a USB board's serial port.
.PHONY: socat
socat:
	@command -v socat >/dev/null || { $(APT_INSTALL) socat; }

# The dashboard's one npm dependency, uPlot (pinned by package-lock.json), copied from node_modules into the
# package data (backend/dashboard/static/vendor/, gitignored): the editable install serves it from there and a wheel
# built from this tree ships it. `npm ci` runs again when package.json or the lockfile changes (Node.js and npm from
# Debian when missing).
.PHONY: vendor
vendor: $(VENDOR_FILES)

$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { $(APT_INSTALL) nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENDOR_FILES) &: $(NPM_STAMP)
	mkdir -p $(VENDOR)
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	cp node_modules/uplot/LICENSE $(VENDOR)/uPlot.LICENSE

APT_INSTALL = apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

clean:
	rm -rf $(VENV) .pytest_cache node_modules $(VENDOR)
