# make run   - set up .venv and run the default study end to end (snakemake --cores all)
# make test  - set up .venv and run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test dag clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

run: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores all

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" python -m pytest -q tests

clean:
	rm -rf results/* .snakemake
