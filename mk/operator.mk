# The operator on a laptop. Included by the root Makefile; see docs/operator/README.md.
##@ Kubernetes testbed and tools

.PHONY: demo-release

demo-release: install tools testbed-up ## The operator at work on the testbed: install, upgrade, a failed migration rolled back
	$(RUN) python -m tests.e2e.demo $(DEMO_FLAGS)
