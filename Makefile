# The two commands of a fresh machine: `make run` and `make test`.
# Everything they need is installed here: a virtualenv with the project and its test tools,
# and Mosquitto (Debian's package) for the tests of the production broker path.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test bench venv clean

run: $(STAMP)
	$(BIN)/mpfleet serve

test: $(STAMP) mosquitto
	$(BIN)/python -m pytest

bench: $(STAMP) bench-tools
	$(BIN)/python bench/http_bench.py

venv: $(STAMP)

# Reinstalled whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,firmware]'
	touch $@

# wrk, the HTTP load generator of the benchmarks, from Debian when missing.
.PHONY: bench-tools mosquitto
bench-tools:
	@command -v wrk >/dev/null || { $(APT_INSTALL) wrk; }

# The tests start their own Mosquitto from a generated config; the system service is never used.
mosquitto:
	@test -x /usr/sbin/mosquitto || { $(APT_INSTALL) mosquitto; }

APT_INSTALL = apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

clean:
	rm -rf $(VENV) .pytest_cache
