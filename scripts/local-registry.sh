#!/usr/bin/env bash
# Serves a registry on 127.0.0.1:${RKUBE_REGISTRY_PORT:-5000} holding `busybox:latest`, an image
# built from Debian's busybox-static (no Docker, nothing from the internet), so a fresh cluster
# can run a real pod:  kubectl create deployment hello --image=127.0.0.1:5000/busybox:latest ...
# The registry keeps running in the background; its files and pid are in
# ${RKUBE_REGISTRY_DIR:-./rkube-registry}. `scripts/local-registry.sh stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${RKUBE_REGISTRY_PORT:-5000}"
DIR="${RKUBE_REGISTRY_DIR:-$(pwd)/rkube-registry}"
ENV_SCRIPT="$(pwd)/tests/e2e/scripts/agent-env.sh"

if [ "${1:-}" = stop ]; then
  exec bash "$ENV_SCRIPT" down "$DIR"
fi
command -v docker-registry >/dev/null 2>&1 || bash scripts/install.sh --deps-only
if curl -sf -o /dev/null "http://127.0.0.1:$PORT/v2/"; then
  echo "a registry already answers on 127.0.0.1:$PORT; pushing busybox:latest to it"
  [ -f "$DIR/busybox-config.json" ] || {
    echo "no image built in $DIR yet: stop that registry or pick another RKUBE_REGISTRY_PORT" >&2
    exit 1
  }
  bash "$ENV_SCRIPT" push "$DIR" "$PORT" busybox latest
else
  bash "$ENV_SCRIPT" up-registry "$DIR" "$PORT"
fi
echo "registry on 127.0.0.1:$PORT serves busybox:latest (data in $DIR)"
echo "  kubectl create deployment hello --image=127.0.0.1:$PORT/busybox:latest -- httpd -f -p 8080 -h /www"
