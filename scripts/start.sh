#!/usr/bin/env bash
# Installs everything, builds rkube and starts a single-node cluster on the embedded
# datastore in the foreground. Data lives in ${RKUBE_DATA_DIR:-./rkube-data}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
DATA_DIR="${RKUBE_DATA_DIR:-$(pwd)/rkube-data}"
PORT="${RKUBE_PORT:-6443}"
echo "starting rkube server (data dir $DATA_DIR, port $PORT)"
echo "when it prints 'ready', in another shell run:"
echo "  export KUBECONFIG=$DATA_DIR/admin.kubeconfig && kubectl get nodes,namespaces"
exec "${CARGO_TARGET_DIR:-target}/release/rkube" server --data-dir "$DATA_DIR" --bind-address 127.0.0.1 --secure-port "$PORT"
