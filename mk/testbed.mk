# Testbed (a real Kubernetes control plane on loopback) and the pinned
# operations toolchain. Included by the root Makefile; see testbed/README.md.
REPO_ROOT ?= $(CURDIR)
TESTBED_ENV = REPO_ROOT=$(REPO_ROOT)
# For other targets: validate manifests offline against the schemas `make tools` writes,
# e.g. `$(REPO_ROOT)/.local/bin/kubeconform $(KUBECONFORM_FLAGS) rendered.yaml`.
KUBECONFORM_FLAGS = -strict -summary \
  -schema-location '$(REPO_ROOT)/.local/share/kubeconform/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}{{.StrictSuffix}}.json'

##@ Kubernetes testbed and tools

.PHONY: testbed-build testbed-up testbed-down tools

testbed-build: ## Build etcd, Kubernetes control plane, kubectl and kwok from source (cached in ~/.cache/kirana)
	@$(TESTBED_ENV) $(REPO_ROOT)/testbed/build.sh

testbed-up: testbed-build ## Start the local control plane with kwok nodes; kubeconfig in .local/testbed/kubeconfig
	@$(TESTBED_ENV) $(REPO_ROOT)/testbed/up.sh

testbed-down: ## Stop the local control plane and delete its data
	@$(TESTBED_ENV) $(REPO_ROOT)/testbed/down.sh

tools: ## Install pinned kubectl, helm, kubeconform (+ schemas), promtool, amtool, actionlint, hadolint into .local/bin
	@$(TESTBED_ENV) $(REPO_ROOT)/testbed/tools.sh
