#!/usr/bin/env bash
# Builds the container image from Containerfile with podman (offline: FROM
# scratch, a static binary built here first, the CA bundle from this
# machine), checks its configuration, saves it, unpacks its layers, and runs
# the binary from the unpacked image in a short herd test on loopback:
# `herd up` with two servers, an IAMAT at one and a WHATSAT at the other
# through `herd client`, then a clean stop. Installs the Debian package podman
# when it is missing (needs root and apt-get).
#
# It then tries `podman run`; running a container needs cgroup and namespace
# controls that CI machines may not give, and the script says so, with
# podman's error, instead of skipping silently (the image was already
# tested by running its own binary).
#
#   scripts/container-test.sh              # build and test the image
#   HERD_IMAGE=herd:1.2 scripts/container-test.sh   # and keep it under that name
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
image="${HERD_IMAGE:-localhost/herd:test}"

export DEBIAN_FRONTEND=noninteractive
need_pkg() { # command package
  if ! command -v "$1" >/dev/null; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
      echo "container-test: $1 is missing; install the Debian package $2 (as root: apt-get install -y $2)" >&2
      exit 1
    fi
    echo "== installing $2"
    [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
    apt-get install -y -qq "$2" >/dev/null
  fi
}
need_pkg podman podman
need_pkg python3 python3
bundle=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$bundle" ]; then
  need_pkg update-ca-certificates ca-certificates
  update-ca-certificates >/dev/null
fi

work=$(mktemp -d)
herd_pid=""
cleanup() {
  if [ -n "$herd_pid" ]; then kill "$herd_pid" 2>/dev/null || true; wait "$herd_pid" 2>/dev/null || true; fi
  if [ -z "${HERD_IMAGE:-}" ]; then podman rmi -f "$image" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== static binary"
ctx="$work/context"
mkdir -p "$ctx/var-lib-herd"
CGO_ENABLED=0 go build -buildvcs=auto -trimpath -o "$ctx/herd" ./cmd/herd
cp "$bundle" "$ctx/ca-certificates.crt"
cp Containerfile "$ctx/"

echo "== podman build ($(podman --version))"
podman build --network=none --pull=never -q -t "$image" -f "$ctx/Containerfile" "$ctx" >/dev/null

echo "== image configuration"
cfg=$(podman image inspect --format '{{json .Config}}' "$image")
python3 - "$cfg" <<'PY'
import json, sys
c = json.loads(sys.argv[1])
want = {
    "Entrypoint": ["/herd"],
    "User": "65532:65532",
    "WorkingDir": "/var/lib/herd",
}
bad = [f"{k} = {c.get(k)!r}, want {v!r}" for k, v in want.items() if c.get(k) != v]
for port in ("12000/tcp", "12100/tcp", "13000/tcp", "14000/tcp"):
    if port not in (c.get("ExposedPorts") or {}):
        bad.append(f"port {port} is not exposed")
for vol in ("/var/lib/herd", "/etc/herd/certs"):
    if vol not in (c.get("Volumes") or {}):
        bad.append(f"{vol} is not a volume")
if bad:
    sys.exit("container-test: image configuration: " + "; ".join(bad))
print("entrypoint /herd, user 65532, volumes /var/lib/herd and /etc/herd/certs, ports 12000 12100 13000 14000")
PY

echo "== podman save, unpack the layers"
podman save -q --format docker-archive -o "$work/image.tar" "$image"
mkdir "$work/saved" "$work/rootfs"
tar -xf "$work/image.tar" -C "$work/saved"
python3 - "$work/saved/manifest.json" <<'PY' >"$work/layers"
import json, sys
for layer in json.load(open(sys.argv[1]))[0]["Layers"]:
    print(layer)
PY
while read -r layer; do
  tar -xpf "$work/saved/$layer" -C "$work/rootfs"
done <"$work/layers"
root="$work/rootfs"
for f in herd etc/ssl/certs/ca-certificates.crt; do
  [ -s "$root/$f" ] || { echo "container-test: the image has no /$f" >&2; exit 1; }
done
[ "$(stat -c %u "$root/var/lib/herd")" = 65532 ] || { echo "container-test: /var/lib/herd in the image is not owned by 65532" >&2; exit 1; }
go version -m "$root/herd" | grep -q 'CGO_ENABLED=0' || { echo "container-test: /herd in the image is not a static (CGO_ENABLED=0) build" >&2; exit 1; }
echo "$(wc -l <"$work/layers") layer(s): /herd ($(du -h "$root/herd" | cut -f1)), the CA bundle, /var/lib/herd"
"$root/herd" version

echo "== a short herd from the image's binary"
# Free loopback ports: ask the kernel for them (port 0) and hand them over.
ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()')
read -r pa pb ma mb <<<"$ports"
mkdir "$work/state"
cat >"$work/herd.toml" <<TOML
log_dir = "logs"
data_dir = "data"

[[server]]
name = "Alpha"
addr = "127.0.0.1:$pa"
metrics = "127.0.0.1:$ma"
neighbors = ["Beta"]

[[server]]
name = "Beta"
addr = "127.0.0.1:$pb"
metrics = "127.0.0.1:$mb"
TOML
(cd "$work/state" && exec "$root/herd" up -config "$work/herd.toml") >"$work/up.log" 2>&1 &
herd_pid=$!
up=""
for _ in $(seq 1 300); do # 30 s at most
  if grep -q 'is up' "$work/up.log"; then up=1; break; fi
  kill -0 "$herd_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "container-test: herd up did not come up:" >&2; cat "$work/up.log" >&2; exit 1
fi
at=$("$root/herd" client -addr "127.0.0.1:$pa" 'IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503')
echo "$at"
case "$at" in
  "AT Alpha "*" kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503") ;;
  *) echo "container-test: unexpected IAMAT reply" >&2; exit 1 ;;
esac
# Beta learns kiwi over the link; its WHATSAT answers with Alpha's AT line.
got=""
for _ in $(seq 1 100); do # 10 s at most
  if reply=$("$root/herd" client -addr "127.0.0.1:$pb" -json 'WHATSAT kiwi.cs.ucla.edu 10 3' 2>/dev/null); then got=1; break; fi
  sleep 0.1
done
if [ -z "$got" ]; then
  echo "container-test: Beta never answered the WHATSAT:" >&2; "$root/herd" client -addr "127.0.0.1:$pb" 'WHATSAT kiwi.cs.ucla.edu 10 3' >&2 || true; exit 1
fi
first=$(printf '%s\n' "$reply" | head -n1)
[ "$first" = "$at" ] || { echo "container-test: Beta's AT line $first differs from Alpha's" >&2; exit 1; }
printf '%s\n' "$reply" | grep -q '"status" : "OK"' || { echo "container-test: WHATSAT not OK:" >&2; printf '%s\n' "$reply" >&2; exit 1; }
echo "WHATSAT at Beta: $(printf '%s\n' "$reply" | grep -c '"name"') place(s), status OK"
kill -TERM "$herd_pid"
if ! wait "$herd_pid"; then
  echo "container-test: herd up did not stop cleanly:" >&2; cat "$work/up.log" >&2; herd_pid=""; exit 1
fi
herd_pid=""
[ -s "$work/state/logs/Alpha.log" ] && [ -d "$work/state/data/Alpha" ] || { echo "container-test: no log or data directory under the working directory" >&2; exit 1; }
echo "stopped cleanly; logs and data under the working directory"

echo "== podman run"
if out=$(timeout 120 podman run --rm --network=none "$image" version 2>&1); then
  echo "$out"
else
  echo "container-test: NOTE: podman run failed on this machine, so the image's binary was"
  echo "  tested outside a container above. Running containers needs cgroup and namespace"
  echo "  controls that this machine does not give; podman said:"
  printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /'
fi
echo "container-test: ok"
