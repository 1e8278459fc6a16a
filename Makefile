# ML Lifecycle Lab. Two commands on a fresh machine with nothing but python3:
#   make run    set up .venv if needed, then run the course end to end (lifecycle run)
#   make test   set up .venv if needed, then lint and test everything (what CI runs)
#   make test-fast   the inner loop: the library's unit tests not marked slow (no servers, no notebooks)
#   make services   start the team's backends on 127.0.0.1 (S3 store, MLflow server, Prefect server and worker);
#               `make run BACKENDS=services` runs the course on them, `make services-down` stops them
# `make setup` (re)installs when .venv is missing or older than pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= smoke
BACKENDS ?= embedded
# Offline machines: no analytics calls from DVC, no telemetry from Prefect or MLflow (MLflow 3 reads
# only MLFLOW_DISABLE_TELEMETRY=true or DO_NOT_TRACK=true, not DO_NOT_TRACK=1).
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
# scikit-learn's OpenMP threads thrash on 2 cores shared with kernels and servers (HGB fit 0.3 s → 8–17 s).
export OMP_NUM_THREADS ?= 1

.PHONY: setup run test test-fast lint lab site clean services services-down monitor-ui

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/lifecycle run --profile $(PROFILE) --backends $(BACKENDS)

lint: setup
	$(BIN)/ruff check lifecycle tests benchmarks notebooks exercises

# nbval executes every notebook; only cells tagged nbval-check-output are compared (tests/run_in_halves.py
# passes its options: --nbval-lax, a 300 s cell timeout, tests/notebooks/sanitize.cfg).
# make test runs the suite in two halves side by side, one per core (tests/run_in_halves.py): the notebooks
# half reports live, the library half when it ends (also in build/test-library.log); each lists its 10 slowest.
# PYTEST_ARGS adds options to both, e.g. make test PYTEST_ARGS="-x"
test: lint
	$(BIN)/python tests/run_in_halves.py $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/pytest tests/unit -m "not slow" -q -p no:nbval $(PYTEST_ARGS)

services: setup
	$(BIN)/lifecycle services up

services-down: setup
	$(BIN)/lifecycle services down

lab: setup
	$(BIN)/jupyter lab notebooks

# The executed course as a static site in build/site/ (runs the course first when build/ has no run).
site: setup
	@test -f build/summary.json || $(BIN)/lifecycle run --profile $(PROFILE)
	$(BIN)/lifecycle site

# Evidently's monitoring UI over lesson 07's weekly checks (workspace/monitoring), telemetry off; Ctrl-C stops it.
monitor-ui: setup
	$(BIN)/lifecycle monitor ui --port 8085

clean:
	@test ! -x $(BIN)/lifecycle || $(BIN)/lifecycle services down  # their state lives in workspace/
	rm -rf workspace build
