# Generated documentation. Included by the root Makefile. The hand-written docs (docs/, README.md,
# docs/operations/) are checked by unit tests: every command the deployment guide names is real.

##@ Docs

.PHONY: docs docs-errors

docs: docs-errors ## Regenerate every generated doc (docs/errors.md); unit tests fail when one is stale

docs-errors: install ## Regenerate docs/errors.md from the error classes (a unit test checks it; ERRORS_OUT=file writes elsewhere)
	$(RUN) python -m kirana.api.contract $(or $(ERRORS_OUT),docs/errors.md)
