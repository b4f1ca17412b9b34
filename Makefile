# Two commands for a newcomer: `make run` and `make test` (README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench serve clean-data setup system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Set up, create synthetic demo data if data/landing/ is empty, run the nightly job once in demo mode.
run: $(STAMP)
	$(BIN)/qi-pipeline demo
	$(BIN)/qi-pipeline run --demo || [ $$? -eq 1 ]

# The nightly schedule (02:00 Europe/London) and the backfill deployment, on a local Prefect server.
serve: $(STAMP)
	$(BIN)/qi-pipeline demo
	$(BIN)/qi-pipeline serve --demo

# LibreOffice checks that every workbook opens cleanly (SPEC 8); Debian's package, installed when missing.
system-deps:
	@command -v soffice >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing libreoffice-calc (used by the workbook tests)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libreoffice-calc >/dev/null; \
	  else \
	    echo "LibreOffice (libreoffice-calc) is missing and cannot be installed here: the workbook tests will fail" \
	         "(set QI_SKIP_LIBREOFFICE=1 to skip them on purpose)"; \
	  fi; }

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

# The performance benchmark (not part of `make test`; README, Benchmark): about 10 minutes on
# 2 cores. `make bench BENCH_ARGS=--quick` is a smoke run of under 3 minutes.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean-data:
	rm -rf data/landing data/raw data/quarantine data/marts data/reports data/docs data/outbox data/state data/asof
