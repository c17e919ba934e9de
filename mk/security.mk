# Misconfiguration scanning. Included by the root Makefile; `make lint` runs `security-scan`.
# trivy's embedded checks (offline: --skip-check-update) over the Dockerfiles, the charts as
# trivy renders them itself, and the manifests `helm template` renders for every
# ci/*-values.yaml scenario; plus hadolint on the Dockerfiles. A finding fails the target
# unless .trivyignore.yaml waives its ID with a statement saying why.
SECURITY_OUT := $(REPO_ROOT)/.local/security
TRIVY_CONFIG_FLAGS = config --skip-check-update --skip-version-check --exit-code 1 --ignorefile .trivyignore.yaml \
  --cache-dir $(SECURITY_OUT)/cache --quiet

.PHONY: security-scan
security-scan: ## trivy config (Dockerfiles, charts, rendered manifests) and hadolint; fails on unwaived findings
	@test -x .local/bin/trivy -a -x .local/bin/hadolint -a -x .local/bin/helm || { echo "run 'make tools' first"; exit 1; }
	.local/bin/hadolint --config .hadolint.yaml docker/*.Dockerfile
	.local/bin/trivy $(TRIVY_CONFIG_FLAGS) --misconfig-scanners dockerfile docker/
	.local/bin/trivy $(TRIVY_CONFIG_FLAGS) --misconfig-scanners helm charts/
	@set -euo pipefail; \
	rm -rf $(SECURITY_OUT)/rendered; mkdir -p $(SECURITY_OUT)/rendered; \
	for chart in $(CHARTS); do \
	  for values in $$(ls $$chart/ci/*-values.yaml 2>/dev/null || echo /dev/null); do \
	    out=$(SECURITY_OUT)/rendered/$$(basename $$chart)-$$(basename $$values .yaml).yaml; \
	    .local/bin/helm template security-scan $$chart -f $$values --namespace security-scan >$$out; \
	  done; \
	done; \
	echo "== rendered manifests: $$(ls $(SECURITY_OUT)/rendered | wc -l) files"; \
	.local/bin/trivy $(TRIVY_CONFIG_FLAGS) --misconfig-scanners kubernetes $(SECURITY_OUT)/rendered
