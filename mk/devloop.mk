# The cluster dev loop, checked offline. Included by the root Makefile; `make lint` runs
# `skaffold-check`: no Docker engine and no cluster are needed.
#   skaffold.yaml   `skaffold diagnose --yaml-only` and `skaffold render --offline --digest-source=none`
DEVLOOP_OUT := $(REPO_ROOT)/.local/devloop
.PHONY: skaffold-check
skaffold-check: ## skaffold diagnose --yaml-only and render --offline (no cluster, no Docker)
	@test -x .local/bin/skaffold -a -x .local/bin/helm || { echo "run 'make tools' first"; exit 1; }
	@mkdir -p $(DEVLOOP_OUT)
	.local/bin/skaffold diagnose --update-check=false --yaml-only --filename skaffold.yaml >$(DEVLOOP_OUT)/skaffold-diagnose.yaml
	PATH=$(REPO_ROOT)/testbed/skaffold-helm:$$PATH .local/bin/skaffold render --update-check=false \
	  --offline --digest-source=none --filename skaffold.yaml --output $(DEVLOOP_OUT)/skaffold-render.yaml
	@grep -q 'kind: ShopRelease' $(DEVLOOP_OUT)/skaffold-render.yaml || { echo "skaffold render produced no ShopRelease"; exit 1; }
	@grep -q 'image: "kirana-operator:dev"\|image: kirana-operator:dev' $(DEVLOOP_OUT)/skaffold-render.yaml || \
	  { echo "skaffold render: the operator Deployment does not run the skaffold-built image"; exit 1; }
	@echo "skaffold render: $$(grep -c '^kind:' $(DEVLOOP_OUT)/skaffold-render.yaml) objects in $(DEVLOOP_OUT)/skaffold-render.yaml"
