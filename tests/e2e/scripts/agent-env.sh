#!/bin/bash
# Test environment for the node agent e2e tests, per shared research (runtime feasibility):
# a busybox image built from Debian's busybox-static (no Docker), served by a local registry on
# loopback, and a containerd with its own root/state/socket and a bridge CNI config.
#   agent-env.sh up   DIR REGISTRY_PORT   -> prints nothing; DIR/containerd.sock is the CRI socket
#   agent-env.sh registry DIR NAME PORT [HTPASSWD]  -> another registry (basic auth with HTPASSWD)
#   agent-env.sh push DIR PORT REPO TAG [USER:PASSWORD]  -> the busybox image (built by `up`) pushed
#   agent-env.sh up-registry DIR REGISTRY_PORT -> only the image and the registry (no containerd)
#   agent-env.sh down DIR [BRIDGE]   -> stops what DIR/*.pid names, unmounts under DIR, removes bridges
set -euo pipefail
cmd=$1 RT=$2

stop_pid() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

if [ "$cmd" = down ]; then
  stop_pid "$RT/containerd.pid"
  for f in "$RT"/*registry.pid; do stop_pid "$f"; done
  ip link del rkubee2e0 2>/dev/null || true
  [ -n "${3:-}" ] && ip link del "$3" 2>/dev/null || true
  for m in $(awk -v rt="$RT" '$2 ~ "^"rt {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  exit 0
fi


# serve_registry NAME ADDR [HTPASSWD]: a registry with its own storage, pid file NAME.registry.pid
serve_registry() {
  local auth=""
  [ -n "${3:-}" ] && auth="auth: { htpasswd: { realm: rkube-e2e, path: $3 } }"
  cat > "$RT/$1.yml" <<YML
version: 0.1
storage: { filesystem: { rootdirectory: $RT/$1 }, delete: { enabled: true } }
http: { addr: $2 }
$auth
YML
  docker-registry serve "$RT/$1.yml" > "$RT/$1.log" 2>&1 &
  echo $! > "$RT/$1.pid"
  for _ in $(seq 1 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$2/v2/" || true)
    [ "$code" = 200 ] || [ "$code" = 401 ] && return 0
    sleep 0.1
  done
  echo "registry $1 did not start:"; tail -20 "$RT/$1.log"; exit 1
}

CURL_AUTH=()
push_blob() { # repo file digest
  local loc
  loc=$(curl -sf "${CURL_AUTH[@]}" -D - -o /dev/null -X POST "http://$REG/v2/$1/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  case "$loc" in http*) ;; *) loc="http://$REG$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=sha256:$3" ;; *) loc="$loc?digest=sha256:$3" ;; esac
  curl -sf "${CURL_AUTH[@]}" -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" "$loc" >/dev/null
}
push_image() { # repo tag config-file (in $RT, with layer.tgz)
  local cfg size layer layer_size manifest
  cfg=$(sha256sum "$3" | cut -d' ' -f1); size=$(stat -c %s "$3")
  layer=$(sha256sum layer.tgz | cut -d' ' -f1); layer_size=$(stat -c %s layer.tgz)
  push_blob "$1" layer.tgz "$layer"
  push_blob "$1" "$3" "$cfg"
  manifest=$(echo "$1" | tr / _)-manifest.json
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$cfg" "$size" "$layer" "$layer_size" > "$manifest"
  curl -sf "${CURL_AUTH[@]}" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$manifest" "http://$REG/v2/$1/manifests/$2" >/dev/null
}

if [ "$cmd" = registry ]; then
  serve_registry "$3-registry" "127.0.0.1:$4" "${5:-}"
  exit 0
fi
if [ "$cmd" = push ]; then
  REG=127.0.0.1:$3
  cd "$RT"
  [ -n "${6:-}" ] && CURL_AUTH=(-u "$6")
  push_image "$4" "$5" busybox-config.json
  exit 0
fi

PORT=$3
REG=127.0.0.1:$PORT
mkdir -p "$RT"
cd "$RT"

# --- image: one layer with busybox, two configs (busybox and pause) ---
rm -rf rootfs && mkdir -p rootfs/bin rootfs/etc rootfs/tmp rootfs/proc rootfs/sys rootfs/dev rootfs/www
cp /bin/busybox rootfs/bin/busybox
for a in sh sleep echo httpd nc wget cat ls ps id hostname ip kill env trap true tar mkdir; do ln -sf busybox rootfs/bin/$a; done
echo 'root:x:0:0:root:/root:/bin/sh' > rootfs/etc/passwd; echo 'root:x:0:' > rootfs/etc/group
echo 'hello from busybox pod' > rootfs/www/index.html
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C rootfs -cf layer.tar .
DIFFID=$(sha256sum layer.tar | cut -d' ' -f1)
gzip -n -9 -c layer.tar > layer.tgz

config() { # $1 = Cmd JSON array
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$1" "$DIFFID"
}
config '["/bin/sh"]' > busybox-config.json
config '["/bin/sh","-c","trap \"exit 0\" TERM INT; sleep 2147483647 & wait"]' > pause-config.json

serve_registry registry "$REG"

push_image busybox latest busybox-config.json
push_image pause 3.9 pause-config.json
[ "$cmd" = up-registry ] && exit 0

# --- CNI: a bridge with host-local IPAM and a default route (pods reach service VIPs later) ---
mkdir -p cni/net.d cni/ipam
cat > cni/net.d/10-rkube-e2e.conflist <<JSON
{"cniVersion":"1.0.0","name":"rkube-e2e","plugins":[
  {"type":"bridge","bridge":"rkubee2e0","isGateway":true,"ipMasq":false,"hairpinMode":true,
   "ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/24","gateway":"10.88.0.1"}]],
           "routes":[{"dst":"0.0.0.0/0"}],"dataDir":"$RT/cni/ipam"}},
  {"type":"portmap","capabilities":{"portMappings":true}}]}
JSON

# --- containerd: the installed version's defaults plus the three settings this needs ---
mkdir -p containerd
containerd config default > containerd/config.toml.default
sed -e "s|^root = .*|root = \"$RT/containerd/root\"|" \
    -e "s|^state = .*|state = \"$RT/containerd/state\"|" \
    -e "s|\"/run/containerd/containerd.sock\"|\"$RT/containerd.sock\"|" \
    -e "s|restrict_oom_score_adj = false|restrict_oom_score_adj = true|" \
    -e "s|sandbox_image = .*|sandbox_image = \"$REG/pause:3.9\"|" \
    -e "s|bin_dir = \"/opt/cni/bin\"|bin_dir = \"/usr/lib/cni\"|" \
    -e "s|conf_dir = \"/etc/cni/net.d\"|conf_dir = \"$RT/cni/net.d\"|" \
    -e "s|path = \"/opt/containerd\"|path = \"$RT/containerd/opt\"|" \
    -e "s|config_path = \"\"|config_path = \"$RT/certs.d\"|" \
    containerd/config.toml.default > containerd/config.toml
grep -q "restrict_oom_score_adj = true" containerd/config.toml
grep -q "config_path = \"$RT/certs.d\"" containerd/config.toml
mkdir -p certs.d
containerd --config containerd/config.toml > containerd.log 2>&1 &
echo $! > containerd.pid
for _ in $(seq 1 100); do [ -S "$RT/containerd.sock" ] && break; sleep 0.1; done
[ -S "$RT/containerd.sock" ] || { echo "containerd did not start:"; tail -20 containerd.log; exit 1; }
