# sklearn-predictor — guessable verbs. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
MODEL  ?= iris
HTTP_PORT ?= 8080
GRPC_PORT ?= 8081
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: tools help install serve serve-house examples test test-fast lint format clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create the virtualenv and install the package with dev tools

examples/models/.trained: $(VENV)/.installed examples/train.py
	$(PY) examples/train.py --out examples/models
	touch $@

examples: examples/models/.trained ## train the bundled example models (iris, house) if missing

serve: examples ## serve the bundled example (MODEL=iris|house) on :8080 HTTP / :8081 gRPC
	$(PY) -m predictor --model_dir examples/models/$(MODEL) --model_name $(MODEL) \
		--http_port $(HTTP_PORT) --grpc_port $(GRPC_PORT)

test: install tools ## run the whole test suite (unit, end-to-end against a real server, deploy checks)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## run the tests without the slow ones (image build)
	$(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check predictor tests examples bench
	$(VENV)/bin/ruff format --check predictor tests examples bench
	$(VENV)/bin/mypy

format: install ## apply ruff formatting and autofixes
	$(VENV)/bin/ruff format predictor tests examples bench
	$(VENV)/bin/ruff check --fix predictor tests examples bench

# Extra tools the tests need (helm, kubectl, ...); mk/*.mk files add recipes to it.
tools::
	@true

clean: ## remove the virtualenv, tools and trained examples
	rm -rf $(VENV) .tools examples/models .pytest_cache .mypy_cache .ruff_cache

# Deploy (image, chart, manifests) and bench targets live in their own files.
-include mk/*.mk
