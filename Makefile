# SeaCat PKI (serverless). The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8080
STAMP  := $(VENV)/.installed
STAGE  ?= dev
OUT    ?= dist/$(STAGE)
REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),eu-west-1)

.PHONY: run test unit typecheck venv reset clean package deploy bench

venv: $(STAMP)

# Re-install whenever a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Start the embedded AWS emulator and the service on http://127.0.0.1:$(PORT)
run: $(STAMP)
	PORT=$(PORT) $(PY) -m scripts.local_run

## Delete the local run's saved state (SEACAT_DATA_DIR, default .seacat-local/): the next `make run` starts empty
reset:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m scripts.local_run --reset

## The whole test suite (unit, integration under moto, end-to-end on 127.0.0.1)
test: $(STAMP)
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

## Benchmarks beside the raw crypto limits, with their budgets (docs/performance.md); not part of make test
bench: $(STAMP)
	$(PY) -m bench.run

typecheck: $(STAMP)
	$(PY) -m mypy --strict chalicelib

## AWS: one CloudFormation template ($(OUT)/sam.yaml) and the Lambda zip for STAGE; calls no AWS API (docs/deploy.md)
package: $(STAMP)
	rm -f $(OUT)/sam.yaml $(OUT)/deployment.zip $(OUT)/merge-template.yaml
	$(PY) infra/merge_templates.py --stage $(STAGE) --out $(OUT)/merge-template.yaml infra/resources.yaml infra/api.yaml
	AWS_DEFAULT_REGION=$(REGION) $(VENV)/bin/chalice package --stage $(STAGE) --merge-template $(OUT)/merge-template.yaml $(OUT)
	$(PY) infra/precompile.py $(OUT)/deployment.zip

## AWS: package, upload the zip to BUCKET and create/update the stack seacat-pki-STAGE (needs AWS credentials and the aws CLI)
deploy: package
	@test -n "$(BUCKET)" || { echo "make deploy needs BUCKET=<an S3 bucket in $(REGION) for the Lambda zip>" >&2; exit 2; }
	aws cloudformation package --region $(REGION) --template-file $(OUT)/sam.yaml \
	  --s3-bucket $(BUCKET) --s3-prefix seacat-pki/$(STAGE) --output-template-file $(OUT)/packaged.yaml
	aws cloudformation deploy --region $(REGION) --template-file $(OUT)/packaged.yaml --stack-name seacat-pki-$(STAGE) \
	  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --parameter-overrides Stage=$(STAGE) $(PARAMS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
