# storeedge: `make demo` runs a simulated store, `make test` runs the checks and tests.
# Both create .venv when it is missing and install what they need (Python packages, and mosquitto and
# PostgreSQL from Debian's packages when they are not installed: tests and benches run throwaway clusters;
# Chromium, for the tests of web pages in a real headless browser; libgomp1, the OpenMP runtime LightGBM loads).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: demo demo-chain kiosk test test-long lint bench models setup openmp mosquitto postgresql chromium cdnow clean

demo: setup mosquitto
	@echo "kiosk: once the store runs, open one in another terminal with 'make kiosk'"
	@echo "       (or 'make kiosk KIOSK_ARGS=--serve' and browse to http://127.0.0.1:8000)"
	$(BIN)/storeedge demo $(DEMO_ARGS)

# A chain: three simulated stores and central pulling their changes into a throwaway PostgreSQL (deleted
# at exit); prints central's operations page and each store's staff API. Ctrl-C stops everything.
demo-chain: setup mosquitto postgresql
	$(BIN)/storeedge demo --stores 3 --central $(DEMO_ARGS)

# A kiosk (Textual) against the store `make demo` is running; KIOSK_ARGS="--staff" for staff mode.
kiosk: setup
	@test -f var/demo/storeedge.toml || { echo "no store running: start 'make demo' in another terminal first"; exit 2; }
	$(BIN)/storeedge kiosk --config var/demo/storeedge.toml $(KIOSK_ARGS)

# Tests run in TEST_WORKERS processes (pytest-xdist): most of the suite waits on brokers, databases and
# daemons it starts on free ports, so two workers on two cores finish well before one.
TEST_WORKERS ?= 2

test: setup openmp mosquitto postgresql chromium cdnow lint
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not slow" --durations=15 $(PYTEST_ARGS)

test-long: setup openmp mosquitto postgresql chromium cdnow lint
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup openmp mosquitto postgresql
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)
	$(BIN)/python bench/state.py $(BENCH_ARGS)
	$(BIN)/python bench/routing.py $(BENCH_ARGS)
	$(BIN)/python bench/sync.py $(BENCH_ARGS)
	$(BIN)/python bench/central.py $(BENCH_ARGS)
	$(BIN)/python bench/models.py $(BENCH_ARGS)
	$(BIN)/python bench/customers.py $(BENCH_ARGS)
	$(BIN)/python bench/experiments.py $(BENCH_ARGS)
	$(BIN)/python bench/kiosk.py $(BENCH_ARGS)
	$(BIN)/python bench/cli_startup.py $(BENCH_ARGS)
	$(BIN)/python bench/sorting.py $(BENCH_ARGS)

# Retrain the shipped models (models/trained/) from the household simulator: deterministic from the seed.
models: setup openmp
	$(BIN)/storeedge models train --source simulated --cutoff 2024-10-01 --seed 0 --out models/trained
	$(BIN)/storeedge models train --task ranker --source simulated --cutoff 2024-10-01 --seed 0 --out models/trained

# The CDNOW sample (2,357 customers, Fader/Hardie/Lee's cohort) for the customer-model tests: the data ships
# inside the `lifetimes` wheel (the library itself is not installed); only the data files are kept.
cdnow: setup
	@[ -f var/data/cdnow/CDNOW_sample.txt ] || { \
		$(BIN)/pip download --quiet --no-deps lifetimes==0.11.3 -d var/data/cdnow/ && \
		$(BIN)/python -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [open("var/data/cdnow/" + n.rsplit("/", 1)[1], "wb").write(z.read(n)) for n in sys.argv[2:]]' \
			var/data/cdnow/Lifetimes-0.11.3-py3-none-any.whl \
			lifetimes/datasets/CDNOW_sample.txt lifetimes/datasets/cdnow_customers_summary_with_transactions.csv; }

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# LightGBM (the next-basket ranker; training extra) loads the system's OpenMP runtime: Debian's libgomp1.
openmp:
	@$(PYTHON) -c "import ctypes; ctypes.CDLL('libgomp.so.1')" 2>/dev/null || { \
		echo "installing libgomp1 (Debian package: OpenMP for LightGBM)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libgomp1 >/dev/null; }

mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || { \
		echo "installing mosquitto (Debian package)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq mosquitto mosquitto-clients >/dev/null; }

# Central's database. Only the server binaries are needed (tests and benches initdb their own throwaway
# clusters, as the postgres user when run as root); Debian's own cluster, if the package starts one, is unused.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing postgresql (Debian package)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

# A real headless browser for the web page tests (central's operations page); Debian's package.
chromium:
	@[ -x /usr/bin/chromium ] || { \
		echo "installing chromium (Debian package)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
