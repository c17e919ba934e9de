# shellcheck shell=bash disable=SC2034
# Shared helpers for testbed/*.sh: pinned versions, paths, logging.
# Sourced, never run. Callers set `set -euo pipefail` themselves.

TESTBED_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="${REPO_ROOT:-$(cd "$TESTBED_DIR/.." && pwd)}"

# shellcheck source=testbed/versions.env
. "$TESTBED_DIR/versions.env"

KIRANA_CACHE="${KIRANA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kirana}"
# Built binaries, one directory per combination of pinned versions.
TESTBED_BIN="${TESTBED_BIN:-$KIRANA_CACHE/testbed/kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}}"
# Running cluster: certificates, etcd data, logs, pid files, kubeconfig.
TESTBED_STATE="${TESTBED_STATE:-$REPO_ROOT/.local/testbed}"

# Loopback ports; override all of them to run a second testbed beside this one.
TESTBED_APISERVER_PORT="${TESTBED_APISERVER_PORT:-16443}"
TESTBED_ETCD_PORT="${TESTBED_ETCD_PORT:-12379}"
TESTBED_ETCD_PEER_PORT="${TESTBED_ETCD_PEER_PORT:-12380}"
TESTBED_KCM_PORT="${TESTBED_KCM_PORT:-16257}"
TESTBED_SCHEDULER_PORT="${TESTBED_SCHEDULER_PORT:-16259}"
TESTBED_KWOK_PORT="${TESTBED_KWOK_PORT:-16280}"
TESTBED_NODES="${TESTBED_NODES:-3}"

KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

log() { printf '[%s %s] %s\n' "$(basename "$0" .sh)" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# run_with_progress LABEL LOGFILE CMD...: runs CMD with its output in LOGFILE,
# printing a heartbeat every 20 s (how long, and how many lines the command has
# written, e.g. packages compiled by `go build -v`). On failure shows the log tail.
run_with_progress() {
  local label="$1" logfile="$2"
  shift 2
  local start=$SECONDS last=$SECONDS
  "$@" >"$logfile" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - last >= 20)); then
      last=$SECONDS
      log "$label: $((SECONDS - start))s, $(wc -l <"$logfile") packages/lines so far"
    fi
  done
  if ! wait "$pid"; then
    tail -n 40 "$logfile" >&2
    die "$label failed after $((SECONDS - start))s (full log: $logfile)"
  fi
  log "$label: done in $((SECONDS - start))s"
}
