# The two commands a newcomer runs (see README):
#   make demo   set up, then run the main job: the whole pipeline on the default configuration
#   make test   set up, then run the test suite (unit, stack, edge, browser and wheel tiers)
SHELL := /bin/bash
PROFILE ?= default
PYTEST_ARGS ?=
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup demo test test-slow docs clean

setup:
	scripts/setup.sh all

demo:
	scripts/setup.sh main
	scripts/setup.sh litert
	scripts/setup.sh web
	.venv/bin/edgeproof pipeline --profile $(PROFILE)

test: setup
	.venv/bin/python scripts/run_tests.py $(PYTEST_ARGS)

test-slow: setup
	.venv/bin/python -m pytest -m slow $(PYTEST_ARGS)

# The documentation site (mkdocs.yml, docs/) into site/, strictly: a broken link or a missing page fails.
docs:
	scripts/setup.sh main
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict

clean:
	rm -rf artifacts test-output .pytest_cache site
