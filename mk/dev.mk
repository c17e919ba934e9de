# A developer's machine: the virtualenv, the pinned tools, the shop on loopback, code quality.
# Included by the root Makefile.

##@ Setup and the local shop

$(UV_HOME)/bin/uv:
	@echo "installing uv $(UV_VERSION) into $(UV_HOME)"
	@python3 -m venv $(UV_HOME) && $(UV_HOME)/bin/pip install -q "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml api/pyproject.toml workers/pyproject.toml operator/pyproject.toml | $(UV)
	$(UV) sync --frozen --all-packages
	@touch $@

.PHONY: setup install run dev dev-stop clean lint fmt

setup: install tools testbed-build ## A new machine: the virtualenv, the pinned tools and the testbed binaries (what CI installs)
	@echo "ready: make dev (the shop in the background), make test, make help"

install: $(VENV)/.synced ## Create the virtualenv with every package and dev tool (uv, locked)

run: install ## The shop on http://127.0.0.1:8000 with embedded PostgreSQL and Redis (Ctrl-C stops all)
	$(RUN) kirana run

# `kirana run` in the background: its output goes to <data dir>/dev.log, and its run record
# (<data dir>/run.json) says when it is ready and which pid to stop.
DEV_DATA = $(or $(KIRANA_DATA_DIR),.local)
KIRANA = $(VENV)/bin/kirana

dev: install ## `make run` in the background ([PORT=8000], log in .local/dev.log); waits until its run record says ready
	@mkdir -p $(DEV_DATA)
	@if $(KIRANA) status >/dev/null 2>&1; then echo "already running:"; $(KIRANA) status; exit 0; fi; \
	nohup $(KIRANA) run $(if $(PORT),--port $(PORT)) > $(DEV_DATA)/dev.log 2>&1 < /dev/null & pid=$$!; \
	echo "kirana run started (pid $$pid, log $(DEV_DATA)/dev.log); waiting for it to be ready"; \
	for _ in $$(seq 1200); do \
	  if $(KIRANA) status --json 2>/dev/null | grep -q '"status": *"ready"'; then $(KIRANA) status; exit 0; fi; \
	  kill -0 $$pid 2>/dev/null || { echo "kirana run exited:"; tail -20 $(DEV_DATA)/dev.log; exit 1; }; \
	  sleep 0.5; \
	done; echo "not ready after 600 s; log: $(DEV_DATA)/dev.log"; exit 1

dev-stop: ## Stop the shop `make dev` started (SIGTERM: a clean stop, as Ctrl-C), and wait until it is gone
	@record=$$($(KIRANA) status --json 2>/dev/null) || { echo "no kirana run is running here"; exit 0; }; \
	pid=$$(echo "$$record" | $(VENV)/bin/python -c 'import json,sys; print(json.load(sys.stdin)["pid"])'); \
	kill -TERM $$pid; \
	for _ in $$(seq 240); do kill -0 $$pid 2>/dev/null || { echo "stopped kirana run (pid $$pid)"; exit 0; }; sleep 0.25; done; \
	echo "pid $$pid still running after 60 s"; exit 1

clean: ## Remove local state (.local/: embedded databases, backups, testbed data)
	-@$(MAKE) --no-print-directory testbed-down
	rm -rf .local

##@ Code quality

lint: install ## ruff, mypy, import-linter, workflows (actionlint + schema), charts, security-scan, compose, skaffold
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy api/src workers/src operator/src deploy
	$(RUN) lint-imports
	@test -x .local/bin/actionlint || { echo "run 'make tools' first"; exit 1; }
	.local/bin/actionlint
	$(RUN) check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(MAKE) --no-print-directory chart-lint
	$(MAKE) --no-print-directory security-scan
	$(MAKE) --no-print-directory devloop-lint

fmt: install ## Format the code (ruff)
	$(RUN) ruff format .
	$(RUN) ruff check --fix .
