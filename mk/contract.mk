# The API contract. Included by the root Makefile; see docs/errors.md and kirana.api.contract.

.PHONY: docs-errors
docs-errors: install ## Regenerate docs/errors.md from the error classes (a unit test checks it)
	$(RUN) python -m kirana.api.contract docs/errors.md
