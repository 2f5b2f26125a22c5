# The front door: `make run`, `make test`, `make lint`, `make bench`, `make package`, `make deploy`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench reliability package deploy destroy clean clean-local audit pixels rotate-origin-secret
STAGE ?= dev
CHECKOV := .venv-checkov/.installed
ZAPPA := .venv-zappa/.installed

$(STAMP): requirements/lambda.txt requirements/app.txt requirements/dev.txt requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt -c requirements/constraints.txt
	touch $(STAMP)

# checkov and Zappa get venvs of their own: checkov's pins clash with ours, and Zappa zips the venv it runs in.
$(CHECKOV): requirements/checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet -r requirements/checkov.txt && touch $@

$(ZAPPA): requirements/zappa.txt requirements/app.txt requirements/lambda.txt requirements/constraints.txt
	test -x .venv-zappa/bin/python || $(PYTHON) -m venv .venv-zappa
	.venv-zappa/bin/pip install --quiet -r requirements/zappa.txt -c requirements/constraints.txt && touch $@

run: $(STAMP)
	$(PY) -m local_stack

test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP) $(CHECKOV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/cfn-lint infra/*.yaml
	.venv-checkov/bin/checkov --quiet --compact --skip-download --framework cloudformation -d infra

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)
	$(PY) -m bench.animation

# Reliability as figures (README "Reliability"): bad input, a load of 500 uploads, faults and a SIGKILL; about 10
# minutes, not part of make test (tests/test_reliability.py runs a sample). One part: python -m reliability load.
reliability: $(STAMP)
	$(PY) -m reliability all $(RELIABILITY_ARGS)

# Lighthouse (mobile + desktop) and the image bytes/sharpness of the pages, against a local stack with the corpus
# uploaded (local_stack/audit.py); reports in .audit/. Needs Node and Debian's Chromium. Not part of make test.
LIGHTHOUSE := .lighthouse/node_modules/.bin/lighthouse
$(LIGHTHOUSE):
	npm install --prefix .lighthouse --save-exact --no-audit --no-fund lighthouse@12.2.3

audit: $(STAMP) $(LIGHTHOUSE)
	$(PY) -m local_stack.audit pixels lighthouse

pixels: $(STAMP)
	$(PY) -m local_stack.audit pixels

package: $(STAMP)
	$(PY) -m infra.package

deploy: $(STAMP) $(ZAPPA) package
	$(PY) -m infra.deploy deploy --stage $(STAGE) --alert-email "$(ALERT_EMAIL)"

# A new secret between CloudFront and the origins, rolled out origins first (docs/deploy.md, "The origin secret").
rotate-origin-secret: $(STAMP)
	$(PY) -m infra.deploy rotate-origin-secret --stage $(STAGE)

destroy: $(STAMP) $(ZAPPA)
	$(PY) -m infra.deploy destroy --stage $(STAGE) $(if $(filter yes,$(DELETE_DATA)),--delete-data) $(if $(CONFIRM),--confirm "$(CONFIRM)")

clean-local:
	rm -rf .local

clean: clean-local
	rm -rf $(VENV) .venv-checkov .venv-zappa build .pytest_cache .ruff_cache

# Re-render every image of a deployed stack (settings from the environment, as for make deploy), e.g.
# make reprocess REPROCESS_ARGS="--legacy-only --dry-run"; see docs/processor.md.
reprocess: $(STAMP)
	$(PY) -m pipeline.reprocess --all $(REPROCESS_ARGS)
