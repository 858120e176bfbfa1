# SeaCat PKI (serverless). The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8080
STAMP  := $(VENV)/.installed

.PHONY: run test unit typecheck venv reset clean

venv: $(STAMP)

# Re-install whenever a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Start the embedded AWS emulator and the service on http://127.0.0.1:$(PORT)
run: $(STAMP)
	PORT=$(PORT) $(PY) -m scripts.local_run

## The whole test suite (unit, integration under moto, end-to-end on 127.0.0.1)
test: $(STAMP)
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

typecheck: $(STAMP)
	$(PY) -m mypy --strict chalicelib

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
