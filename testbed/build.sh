#!/usr/bin/env bash
# Builds the testbed's binaries from source through the Go module proxy:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl (wrapper
# module testbed/go/kubernetes), etcd (testbed/go/etcd) and kwok.
# Called by `make testbed-build`; binaries already present are reused.
#
#   testbed/build.sh                 build what is missing, print the bin dir
#   testbed/build.sh --print-bin-dir print where the binaries live, build nothing
#   testbed/build.sh --print-replaces print the replace block for testbed/go/kubernetes/go.mod
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

GO_BUILD_FLAGS=(-p "${TESTBED_GO_PARALLELISM:-2}" -trimpath)

print_replaces() {
  # Every staging module k8s.io/kubernetes points at ./staging becomes the
  # published k8s.io/* release of the same Kubernetes version.
  local modfile
  modfile="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  echo "replace ("
  grep -oE '^\s+k8s\.io/[a-z0-9-]+ => \./staging' "$modfile" |
    awk -v v="$KUBE_STAGING_VERSION" '{printf "\t%s => %s %s\n", $1, $1, v}'
  echo ")"
}

check_pins() {
  # The wrapper go.mod files must build exactly what versions.env names.
  grep -Eq "^(require )?\s*k8s.io/kubernetes ${KUBE_VERSION}( // indirect)?\$" "$TESTBED_DIR/go/kubernetes/go.mod" ||
    die "testbed/go/kubernetes/go.mod does not require k8s.io/kubernetes ${KUBE_VERSION}"
  if grep -E '^\s+k8s\.io/[a-z0-9-]+ => k8s\.io/' "$TESTBED_DIR/go/kubernetes/go.mod" |
    grep -vq " ${KUBE_STAGING_VERSION}\$"; then
    die "testbed/go/kubernetes/go.mod replaces a staging module with a version other than ${KUBE_STAGING_VERSION}"
  fi
  grep -Eq "^(require )?\s*go.etcd.io/etcd/server/v3 ${ETCD_VERSION}\$" "$TESTBED_DIR/go/etcd/go.mod" ||
    die "testbed/go/etcd/go.mod does not require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
}

kube_ldflags() {
  # The same version variables Kubernetes' own build stamps, so that
  # `kube-apiserver --version`, /version and kubectl report the real release.
  local flags="-s -w" minor pkg
  minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X ${pkg}.gitVersion=${KUBE_VERSION}"
    flags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${KUBE_BUILD_DATE}"
  done
  echo "$flags"
}

build_kubernetes() {
  local missing=() b
  for b in "${KUBE_BINARIES[@]}"; do
    [[ -x "$TESTBED_BIN/$b" ]] || missing+=("$b")
  done
  if ((${#missing[@]} == 0)); then
    log "kubernetes ${KUBE_VERSION}: present, reusing"
    return
  fi
  local tmp="$TESTBED_BIN/.tmp-kubernetes" pkgs=()
  rm -rf "$tmp" && mkdir -p "$tmp"
  for b in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  log "kubernetes ${KUBE_VERSION}: building ${missing[*]} (cold: ~20 min on 2 cores)"
  (cd "$TESTBED_DIR/go/kubernetes" && run_with_progress "kubernetes build" "$TESTBED_BIN/build-kubernetes.log" \
    env CGO_ENABLED=0 go build -v "${GO_BUILD_FLAGS[@]}" -ldflags "$(kube_ldflags)" -o "$tmp/" "${pkgs[@]}")
  for b in "${missing[@]}"; do mv "$tmp/$b" "$TESTBED_BIN/$b"; done
  rm -rf "$tmp"
}

build_etcd() {
  if [[ -x "$TESTBED_BIN/etcd" ]]; then
    log "etcd ${ETCD_VERSION}: present, reusing"
    return
  fi
  log "etcd ${ETCD_VERSION}: building"
  (cd "$TESTBED_DIR/go/etcd" && run_with_progress "etcd build" "$TESTBED_BIN/build-etcd.log" \
    env CGO_ENABLED=0 go build -v "${GO_BUILD_FLAGS[@]}" -ldflags "-s -w" -o "$TESTBED_BIN/.tmp-etcd" .)
  mv "$TESTBED_BIN/.tmp-etcd" "$TESTBED_BIN/etcd"
}

build_kwok() {
  if [[ -x "$TESTBED_BIN/kwok" ]]; then
    log "kwok ${KWOK_VERSION}: present, reusing"
    return
  fi
  # kwok's own module has no replace directives, so `go install pkg@version`
  # builds it with exactly the dependencies its release pins in go.sum.
  local tmp="$TESTBED_BIN/.tmp-kwok"
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "kwok ${KWOK_VERSION}: building"
  run_with_progress "kwok build" "$TESTBED_BIN/build-kwok.log" \
    env CGO_ENABLED=0 GOBIN="$tmp" go install -v "${GO_BUILD_FLAGS[@]}" \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  mv "$tmp/kwok" "$TESTBED_BIN/kwok"
  rm -rf "$tmp"
}

verify() {
  # A binary that does not report the pinned version is a build defect.
  local v
  v="$("$TESTBED_BIN/kube-apiserver" --version)"
  [[ "$v" == "Kubernetes ${KUBE_VERSION}" ]] || die "kube-apiserver reports '$v', want 'Kubernetes ${KUBE_VERSION}'"
  v="$("$TESTBED_BIN/kubectl" version --client -o json)"
  [[ "$v" == *"\"gitVersion\": \"${KUBE_VERSION}\""* ]] || die "kubectl reports $v, want ${KUBE_VERSION}"
  v="$("$TESTBED_BIN/etcd" --version)"
  [[ "$v" == "etcd Version: ${ETCD_VERSION#v}"$'\n'* ]] || die "etcd reports '$v', want ${ETCD_VERSION}"
  v="$("$TESTBED_BIN/kwok" --version)"
  [[ "$v" == *"${KWOK_VERSION#v}"* ]] || die "kwok reports '$v', want ${KWOK_VERSION}"
}

main() {
  case "${1:-}" in
    --print-bin-dir) echo "$TESTBED_BIN"; return ;;
    --print-replaces) print_replaces; return ;;
    "") ;;
    *) die "unknown argument: $1" ;;
  esac
  command -v go >/dev/null || die "go is not on PATH (the testbed builds from source)"
  check_pins
  mkdir -p "$TESTBED_BIN"
  local start=$SECONDS
  build_etcd
  build_kwok
  build_kubernetes
  verify
  log "binaries ready in $TESTBED_BIN ($((SECONDS - start))s)"
  local b
  for b in etcd kwok "${KUBE_BINARIES[@]}"; do
    printf '  %-24s %4d MiB\n' "$b" "$(($(stat -c %s "$TESTBED_BIN/$b") / 1048576))" >&2
  done
}

main "$@"
