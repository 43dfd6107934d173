#!/usr/bin/env bash
# Debian's packages that build and run the images without a Docker engine: debootstrap (base
# root filesystem), buildah (the Dockerfiles, chroot isolation, no daemon), runc (the tests run
# each image; the node agent runs train pods in it) and iproute2 and nftables (each pod's network
# namespace and the rules that let it reach only the station API). Installs the missing ones
# with apt-get when run as root; otherwise names them.
set -euo pipefail
missing=()
for tool in debootstrap:debootstrap buildah:buildah runc:runc ip:iproute2 nft:nftables; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-tools: the images need Debian's ${missing[*]}: apt-get install -y ${missing[*]}" >&2
  exit 0
fi
echo "install-tools: apt-get install -y ${missing[*]}" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
