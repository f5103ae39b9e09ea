#!/usr/bin/env bash
# Installs what building and testing rkube needs on a fresh Debian machine of this kind, then
# builds the binary. Idempotent; runs as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# The node-join e2e test computes the CA pin with openssl, as kubeadm documents it.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The CRI bindings (k8s-cri) are generated at build time from the CRI proto: protoc.
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
# The node agent's end-to-end tests run real containers: containerd (CRI) with runc, the bridge
# and host-local CNI plugins, a local registry, and busybox-static to build the test image.
command -v containerd >/dev/null 2>&1 || need_apt+=(containerd)
command -v runc >/dev/null 2>&1 || need_apt+=(runc)
[ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
# The managed runtime's bridge CNI masquerades pod traffic (ipMasq) with the iptables command;
# the node IPAM e2e test builds a network namespace with iproute2's `ip netns`.
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (this machine kind ships a Rust toolchain via rustup)" >&2
  exit 1
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "warning: kubectl not found on PATH; the end-to-end tests need it" >&2
fi

# The IAM end-to-end tests run the real `aws eks get-token` (awscli) and an STS stand-in that
# checks SigV4 signatures with botocore; both come from PyPI into a venv under the project.
if [ ! -x .venv/bin/aws ] || ! .venv/bin/python -c 'import botocore' >/dev/null 2>&1; then
  if ! python3 -m venv .venv >/dev/null 2>&1; then
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-venv
    python3 -m venv .venv
  fi
  .venv/bin/pip install --quiet --disable-pip-version-check awscli botocore
fi

# The test suite shares one debug build between its binaries; it asks for dependencies only.
if [ "${1:-}" = "--deps-only" ]; then exit 0; fi
cargo build --release --locked --bin rkube
echo "built ${CARGO_TARGET_DIR:-$(pwd)/target}/release/rkube"
