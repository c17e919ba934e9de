# Kirana: the command catalogue. `make help` lists every target by area; each area's targets are in
# mk/<area>.mk (tests/unit/test_make_catalogue.py checks that every listed target is real).
SHELL := /bin/bash
.DEFAULT_GOAL := help
REPO_ROOT := $(CURDIR)
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(HOME)/.cache/kirana/uv-cache
UV_VERSION := 0.13.9
UV_HOME := $(HOME)/.cache/kirana/uv-$(UV_VERSION)
UV := $(shell command -v uv 2>/dev/null || echo $(UV_HOME)/bin/uv)
VENV := .venv
RUN := $(UV) run --frozen
PYTEST_WORKERS ?= 2

include mk/dev.mk mk/test.mk mk/db.mk mk/docs.mk mk/charts.mk mk/security.mk mk/devloop.mk mk/testbed.mk mk/operator.mk \
	mk/deploy.mk

##@ Help

.PHONY: help
help: ## List every target, grouped by area
	@awk -f mk/help.awk $(MAKEFILE_LIST)
