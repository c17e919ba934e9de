# Deploying a shop to a cluster (deploy/, docs/operations/deployment-guide.md). Included by the root
# Makefile. Every target takes KUBECONFIG (a file; required) and, where it says so, VERSION.
# Optional: NAMESPACE (default: the environment's), RELEASE (helm release, default shop),
# VALUES (one more values file), TIMEOUT (per wait, default 15m), SMOKE (auto|required|off),
# SMOKE_URL (base URL for the smoke request instead of the Ingress), ENV (health-check and
# deploy-rollback: staging or production, default staging), TO (deploy-rollback: a revision or a version).
# ENV only from the command line: a shell's own $ENV (sh's startup file) must not pick the cluster.
DEPLOY_ENV = $(if $(filter command line,$(origin ENV)),$(ENV),staging)
DEPLOY_FLAGS = --kubeconfig "$(KUBECONFIG)" $(if $(VERSION),--version "$(VERSION)") \
	$(if $(NAMESPACE),--namespace "$(NAMESPACE)") $(if $(RELEASE),--release "$(RELEASE)") \
	$(if $(VALUES),--values "$(VALUES)") $(if $(TIMEOUT),--timeout "$(TIMEOUT)") \
	$(if $(SMOKE),--smoke "$(SMOKE)") $(if $(SMOKE_URL),--smoke-url "$(SMOKE_URL)")
DEPLOY = $(RUN) python -m deploy

##@ Deploy (a real cluster, or the testbed)

.PHONY: build deploy-staging deploy-prod deploy-rollback health-check

# The images the charts run (context: the repository); the delivery workflow builds and pushes
# kirana-api and kirana-operator, kirana-load is built for load runs only.
IMAGES = kirana-api=docker/app.Dockerfile kirana-operator=docker/operator.Dockerfile kirana-load=docker/load.Dockerfile
IMAGE_TAG = $(or $(VERSION),dev)

build: ## Build the three images, tagged VERSION (default dev), with docker buildx (needs an engine)
	@command -v docker >/dev/null 2>&1 || { echo "make build: no docker command here; the images are built by CI (.github/workflows/delivery.yml) or on a machine with an engine" >&2; exit 2; }
	@docker info >/dev/null 2>&1 || { echo "make build: docker cannot reach an engine (docker info failed); start one or build in CI" >&2; exit 2; }
	@set -e; for pair in $(IMAGES); do image=$${pair%%=*}; file=$${pair#*=}; \
	  echo "building $$image:$(IMAGE_TAG) from $$file"; \
	  docker buildx build --load --file "$$file" --tag "$$image:$(IMAGE_TAG)" .; done

deploy-staging: install ## Deploy VERSION to staging (KUBECONFIG=... VERSION=1.2.3); rolls back and exits 1 on failure
	$(DEPLOY) deploy staging $(DEPLOY_FLAGS)

deploy-prod: install ## Deploy VERSION to production (KUBECONFIG=... VERSION=1.2.3); rolls back and exits 1 on failure
	$(DEPLOY) deploy production $(DEPLOY_FLAGS)

deploy-rollback: install ## Roll ENV back to the previous helm revision, or TO=<revision|version> (KUBECONFIG=...)
	$(DEPLOY) rollback $(DEPLOY_ENV) $(DEPLOY_FLAGS) $(if $(TO),--to "$(TO)")

health-check: install ## The release checkpoints of ENV (KUBECONFIG=... [VERSION=expected]): Ready, rollout, migration, smoke
	$(DEPLOY) health-check $(DEPLOY_ENV) $(DEPLOY_FLAGS)
