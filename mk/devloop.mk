# The container dev stack and the cluster dev loop, checked offline. Included by the root
# Makefile; `make lint` runs `devloop-lint`: no Docker engine and no cluster are needed.
#   compose.yaml (+ compose.prod.yaml)  `docker compose config` (compose v2, a standalone binary)
#   skaffold.yaml                       `skaffold diagnose --yaml-only` and
#                                       `skaffold render --offline --digest-source=none`
DEVLOOP_OUT := $(REPO_ROOT)/.local/devloop
# Secrets compose.prod.yaml reads from the environment: placeholders, for validation only.
COMPOSE_PROD_ENV := KIRANA_SECRET_KEY=x POSTGRES_PASSWORD=x RAZORPAY_KEY_ID=x RAZORPAY_KEY_SECRET=x \
  RAZORPAY_WEBHOOK_SECRET=x GRAFANA_ADMIN_PASSWORD=x

.PHONY: devloop-lint compose-config skaffold-check
devloop-lint: compose-config skaffold-check ## docker compose config (dev and prod) and skaffold diagnose + render, offline

compose-config: ## Validate compose.yaml and compose.yaml + compose.prod.yaml
	@test -x .local/bin/docker-compose || { echo "run 'make tools' first"; exit 1; }
	@mkdir -p $(DEVLOOP_OUT)
	.local/bin/docker-compose -f compose.yaml config --quiet
	env $(COMPOSE_PROD_ENV) .local/bin/docker-compose -f compose.yaml -f compose.prod.yaml config --quiet

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
