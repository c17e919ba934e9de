# Helm chart checks. Included by the root Makefile; `make lint` runs `chart-lint`.
# Every chart under charts/ is linted strictly with each of its ci/*-values.yaml scenarios, and
# rendered for each scenario and validated offline against the pinned Kubernetes schemas
# (KUBECONFORM_FLAGS, mk/testbed.mk) plus our own CRDs' schemas (testbed/jsonschemas.py).
CHARTS := $(patsubst %/Chart.yaml,%,$(wildcard charts/*/Chart.yaml))
CHART_SCHEMAS := $(REPO_ROOT)/.local/share/kubeconform-charts

##@ Code quality

.PHONY: chart-lint
chart-lint: ## helm lint --strict and helm template | kubeconform for every chart and ci/*-values.yaml
	@test -x .local/bin/helm -a -x .local/bin/kubeconform || { echo "run 'make tools' first"; exit 1; }
	@set -euo pipefail; \
	rm -rf $(CHART_SCHEMAS); mkdir -p $(CHART_SCHEMAS); \
	crds="$$(find charts -path '*/crds/*.yaml' | sort)"; \
	if [ -n "$$crds" ]; then $(RUN) python testbed/jsonschemas.py --out $(CHART_SCHEMAS) $$crds >/dev/null; fi; \
	for chart in $(CHARTS); do \
	  scenarios="$$(ls $$chart/ci/*-values.yaml 2>/dev/null || true)"; \
	  for values in $${scenarios:-/dev/null}; do \
	    echo "== $$chart with $$values"; \
	    .local/bin/helm lint --strict $$chart -f $$values; \
	    .local/bin/helm template chart-lint $$chart -f $$values --namespace chart-lint --include-crds \
	      | .local/bin/kubeconform $(KUBECONFORM_FLAGS) \
	          -schema-location '$(CHART_SCHEMAS)/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}{{.StrictSuffix}}.json' -; \
	  done; \
	done
