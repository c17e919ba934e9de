#!/usr/bin/env bash
# Starts the testbed: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok on loopback, with fake nodes that kwok keeps Ready.
# Called by `make testbed-up` and by the e2e fixture (tests/e2e/conftest.py).
#
# Everything it makes lives under $TESTBED_STATE (.local/testbed): pki/,
# etcd data, logs/, pids/ and the admin kubeconfig. It is idempotent: a
# healthy testbed is left alone, a half-dead one is stopped and started anew.
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

PKI="$TESTBED_STATE/pki"
LOGS="$TESTBED_STATE/logs"
PIDS="$TESTBED_STATE/pids"
KUBECONFIG_OUT="$TESTBED_STATE/kubeconfig"
SERVER="https://127.0.0.1:${TESTBED_APISERVER_PORT}"
SERVICE_CIDR=10.96.0.0/16
WAIT_SECONDS="${TESTBED_WAIT_SECONDS:-90}"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

kubectl() { "$TESTBED_BIN/kubectl" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

is_running() { # is_running NAME: its pid file names a live process of ours
  local pidfile="$PIDS/$1.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$TESTBED_STATE"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() { # start NAME BINARY ARGS...: detached, in its own session, logged
  local name="$1"
  shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

wait_for() { # wait_for WHAT CMD...: retries CMD until it succeeds or time runs out
  local what="$1" start=$SECONDS last=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    local c
    for c in "${COMPONENTS[@]}"; do
      if [[ -f "$PIDS/$c.pid" ]] && ! is_running "$c"; then
        tail -n 30 "$LOGS/$c.log" >&2 || true
        die "$c exited while waiting for $what (log: $LOGS/$c.log)"
      fi
    done
    ((SECONDS - start < WAIT_SECONDS)) || die "timed out after ${WAIT_SECONDS}s waiting for $what (logs: $LOGS)"
    if ((SECONDS - last >= 5)); then
      last=$SECONDS
      log "waiting for $what ($((SECONDS - start))s)"
    fi
    sleep 0.5
  done
}

make_pki() {
  mkdir -p "$PKI"
  (
    cd "$PKI"
    ecparam() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
    ecparam ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=kirana-testbed-ca" -out ca.crt 2>/dev/null
    # Service-account tokens are signed with RS256, which every client verifies.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub
    issue() { # issue NAME SUBJECT EXT: a leaf certificate signed by the CA
      ecparam "$1.key"
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    issue apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    issue admin "/O=system:masters/CN=kirana-testbed-admin" "$client"
    issue controller-manager "/CN=system:kube-controller-manager" "$client"
    issue scheduler "/CN=system:kube-scheduler" "$client"
    # kwok plays every node's kubelet; it patches node and pod status and
    # renews leases for all of them, so it gets cluster-admin rights.
    issue kwok "/O=system:masters/CN=kwok" "$client"
  )
}

write_kubeconfig() { # write_kubeconfig FILE CERTNAME
  b64() { base64 -w0 <"$1"; }
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kirana-testbed
  cluster:
    server: ${SERVER}
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$PKI/$2.crt")
    client-key-data: $(b64 "$PKI/$2.key")
contexts:
- name: kirana-testbed
  context:
    cluster: kirana-testbed
    user: $2
current-context: kirana-testbed
EOF
  chmod 600 "$1"
}

healthy() {
  [[ -f "$KUBECONFIG_OUT" ]] || return 1
  local c
  for c in "${COMPONENTS[@]}"; do is_running "$c" || return 1; done
  [[ "$(kubectl get --raw /readyz 2>/dev/null)" == ok ]]
}

register_nodes() {
  local i manifest=""
  for ((i = 0; i < TESTBED_NODES; i++)); do
    manifest+="apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: \"0\"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
    topology.kubernetes.io/zone: testbed-zone-$((i % 3))
---
"
  done
  printf '%s' "$manifest" | kubectl apply -f - >/dev/null
}

nodes_ready() {
  local ready
  ready="$(kubectl get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')"
  ((ready == TESTBED_NODES))
}

main() {
  local start=$SECONDS c
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl; do
    [[ -x "$TESTBED_BIN/$c" ]] || die "$TESTBED_BIN/$c is missing: run 'make testbed-build' first"
  done
  command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"

  if healthy; then
    log "testbed already running at $SERVER (kubeconfig: $KUBECONFIG_OUT)"
    return
  fi
  if [[ -d "$TESTBED_STATE" ]]; then
    log "found a stale or partial testbed; stopping it first"
  fi
  # Also reaps components orphaned by a deleted state directory.
  "$TESTBED_DIR/down.sh" 2>&1 | grep -v "no testbed at" >&2 || true
  local port
  for port in "$TESTBED_APISERVER_PORT" "$TESTBED_ETCD_PORT" "$TESTBED_ETCD_PEER_PORT" \
    "$TESTBED_KCM_PORT" "$TESTBED_SCHEDULER_PORT" "$TESTBED_KWOK_PORT"; do
    port_busy "$port" && die "127.0.0.1:$port is already in use (set TESTBED_*_PORT to move the testbed)"
  done

  mkdir -p "$LOGS" "$PIDS" "$TESTBED_STATE/kwok-home" "$TESTBED_STATE/certs"
  mkdir -m 700 "$TESTBED_STATE/etcd"
  log "generating certificates"
  make_pki
  write_kubeconfig "$TESTBED_STATE/admin.kubeconfig" admin
  write_kubeconfig "$TESTBED_STATE/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$TESTBED_STATE/scheduler.kubeconfig" scheduler
  write_kubeconfig "$TESTBED_STATE/kwok.kubeconfig" kwok

  log "starting etcd ${ETCD_VERSION} on 127.0.0.1:${TESTBED_ETCD_PORT}"
  start etcd "$TESTBED_BIN/etcd" \
    --name testbed \
    --data-dir "$TESTBED_STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:${TESTBED_ETCD_PORT}" \
    --advertise-client-urls "http://127.0.0.1:${TESTBED_ETCD_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${TESTBED_ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${TESTBED_ETCD_PEER_PORT}" \
    --initial-cluster "testbed=http://127.0.0.1:${TESTBED_ETCD_PEER_PORT}" \
    --unsafe-no-fsync \
    --log-level warn
  wait_for "etcd" bash -c "exec 3<>/dev/tcp/127.0.0.1/${TESTBED_ETCD_PORT}"

  log "starting kube-apiserver ${KUBE_VERSION} on ${SERVER}"
  start kube-apiserver "$TESTBED_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${TESTBED_ETCD_PORT}" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --secure-port "${TESTBED_APISERVER_PORT}" \
    --cert-dir "$TESTBED_STATE/certs" \
    --tls-cert-file "$PKI/apiserver.crt" \
    --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged \
    --endpoint-reconciler-type none \
    --profiling=false
  wait_for "kube-apiserver /readyz" bash -c "[[ \"\$('$TESTBED_BIN/kubectl' --kubeconfig '$TESTBED_STATE/admin.kubeconfig' get --raw /readyz 2>/dev/null)\" == ok ]]"

  log "starting kube-controller-manager and kube-scheduler"
  start kube-controller-manager "$TESTBED_BIN/kube-controller-manager" \
    --kubeconfig "$TESTBED_STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$TESTBED_STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$TESTBED_STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 \
    --secure-port "${TESTBED_KCM_PORT}" \
    --cert-dir "$TESTBED_STATE/certs/controller-manager" \
    --service-account-private-key-file "$PKI/sa.key" \
    --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" \
    --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --use-service-account-credentials \
    --controllers '*' \
    --leader-elect=false \
    --profiling=false
  start kube-scheduler "$TESTBED_BIN/kube-scheduler" \
    --kubeconfig "$TESTBED_STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$TESTBED_STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$TESTBED_STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 \
    --secure-port "${TESTBED_SCHEDULER_PORT}" \
    --cert-dir "$TESTBED_STATE/certs/scheduler" \
    --leader-elect=false \
    --profiling=false

  log "starting kwok ${KWOK_VERSION}"
  # HOME is the state dir so that a ~/.kwok/kwok.yaml of the user's never
  # mixes its stages into ours.
  HOME="$TESTBED_STATE/kwok-home" start kwok "$TESTBED_BIN/kwok" \
    --kubeconfig "$TESTBED_STATE/kwok.kubeconfig" \
    --config "$TESTBED_DIR/kwok/nodes.yaml" \
    --config "$TESTBED_DIR/kwok/pods.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 40 \
    --node-ip 127.0.0.1 \
    --cidr 10.244.0.0/16 \
    --server-address "127.0.0.1:${TESTBED_KWOK_PORT}"

  # The admin kubeconfig is published only once the cluster answers, so its
  # presence is a promise that the API is up.
  cp "$TESTBED_STATE/admin.kubeconfig" "$KUBECONFIG_OUT.tmp"
  mv "$KUBECONFIG_OUT.tmp" "$KUBECONFIG_OUT"
  log "registering ${TESTBED_NODES} kwok nodes"
  wait_for "node registration" register_nodes
  wait_for "kwok nodes Ready" nodes_ready
  wait_for "the default service account (controller-manager up)" kubectl get serviceaccount default -n default
  wait_for "kube-scheduler /readyz" bash -c "exec 3<>/dev/tcp/127.0.0.1/${TESTBED_SCHEDULER_PORT}"
  log "testbed up in $((SECONDS - start))s: export KUBECONFIG=$KUBECONFIG_OUT"
}

main "$@"
