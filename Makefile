# make run   - set up .venv and run the default study end to end: seed 0 of every cell first, then all seeds
# make test  - set up .venv (and Debian's chromium for the report test) and run the test suite
# make test-fast - set up .venv and run the unit tests that run no Snakemake and are not slow (a few minutes)
# make bench - set up .venv and run the benchmark suite (~20 min): results/benchmarks/suite.{json,md}
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-fast bench browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# First the first seed of every cell (a complete report at n = 1, early), then all seeds.
run: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores all --configfile workflow/presets/first_seed.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores all

# The report test drives headless Chromium: Debian's package (root, as on the dev and CI machines).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup browser
	PATH="$(CURDIR)/$(BIN):$$PATH" python -m pytest -q --durations=15 tests

test-fast: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" python -m pytest -q -m "not workflow and not slow" tests/unit

bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHONPATH=workflow python -m rethink.bench.suite --out results/benchmarks/suite.json

clean:
	rm -rf results/* .snakemake
