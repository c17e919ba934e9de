#!/usr/bin/env bash
# Stops the testbed started by testbed/up.sh and deletes its state (etcd data,
# certificates, logs, kubeconfig). Called by `make testbed-down`, by up.sh
# before it replaces a broken testbed, and by the e2e fixture at session end.
#
# Only testbed processes whose command line names $TESTBED_STATE are
# signalled: those in its pid files (a stale pid file that an unrelated process
# has since reused is harmless), and orphans whose pid files were deleted with
# the state directory (e.g. by `rm -rf .local`).
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

PIDS="$TESTBED_STATE/pids"
# Reverse start order: clients first, etcd last.
ORDER=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)

ours() { # ours PID: a live process started by up.sh for this state dir
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$TESTBED_STATE"
}

stop() { # stop NAME: TERM, then KILL after 10 s
  local pidfile="$PIDS/$1.pid" pid i
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if [[ -n "$pid" ]] && ours "$pid"; then
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      ours "$pid" || break
      sleep 0.1
    done
    if ours "$pid"; then
      log "$1 ignored SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

orphans() { # pids of testbed components for this state dir that no pid file names
  local proc cmd
  for proc in /proc/[0-9]*; do
    cmd="$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null)" || continue
    case "${cmd%% *}" in
      */etcd | */kube-apiserver | */kube-controller-manager | */kube-scheduler | */kwok) ;;
      *) continue ;;
    esac
    [[ "$cmd" == *"$TESTBED_STATE/"* ]] && echo "${proc#/proc/}"
  done
  return 0
}

main() {
  local name pid
  if [[ -d "$PIDS" ]]; then
    for name in "${ORDER[@]}"; do stop "$name"; done
  fi
  for pid in $(orphans); do
    mkdir -p "$PIDS"
    echo "$pid" >"$PIDS/orphan-$pid.pid"
    stop "orphan-$pid"
  done
  if [[ ! -d "$TESTBED_STATE" ]]; then
    log "no testbed at $TESTBED_STATE"
    return
  fi
  rm -rf "$TESTBED_STATE"
  log "testbed stopped and its data removed"
}

main "$@"
