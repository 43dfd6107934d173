#!/usr/bin/env bash
# Build the station's images as OCI archives without a Docker engine or a container registry:
#   1. two base root filesystems from Debian bookworm's packages (debootstrap --variant=minbase):
#      "python" (Debian's python3.11) for the final stages, "python-build" (the same plus venv,
#      ensurepip's pip and CA certificates) for the build stages;
#   2. each image from its own Dockerfile with Debian's buildah (`buildah bud`, chroot isolation,
#      vfs storage: no daemon, no user namespace), the two bases passed as build arguments in
#      place of python:3.11-slim, which only a registry serves;
#   3. `buildah push` to an OCI archive.
# Everything lives in a cache outside the repository ($PHT_IMAGES_CACHE, ~/.cache/pht-images):
# bases by a hash of their package lists and this script, archives by a hash of the base, the
# Dockerfile, the locks and the sources the image copies; a cached archive is reused as it is.
# The archives are linked into $PHT_IMAGES_OUT (.tools/images/<name>.tar). Needs root.
#
#   tools/images/build.sh [NAME...]     NAME: operator station-api cohort-summary kaplan-meier
#                                       federated-logreg station-aggregates (default: all of them)
#   tools/images/build.sh --list        the names `make images` builds
#
# gpu-training-step is not built by default: PyTorch alone is larger than all the other images
# together (its CUDA build several GiB); name it to build it with the CPU wheel from PyPI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${PHT_IMAGES_CACHE:-$HOME/.cache/pht-images}
OUT=${PHT_IMAGES_OUT:-$repo/.tools/images}
MIRROR=${PHT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The build steps download from PyPI (every file checked against the lock's hashes). Behind a
# TLS-inspecting proxy they need this machine's certificate authorities: the bundle is mounted
# read-only into each RUN step, never copied into an image. Empty: the base's own bundle only.
CA_BUNDLE=${PHT_IMAGES_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
SUITE=bookworm
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
DEFAULT_IMAGES=(operator station-api cohort-summary kaplan-meier federated-logreg station-aggregates)
RUNTIME_PACKAGES=python3,python-is-python3,ca-certificates
BUILD_PACKAGES=python3,python-is-python3,python3-venv,ca-certificates

say() { echo "build-images: $*" >&2; }
fail() { say "$*"; exit 2; }

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${DEFAULT_IMAGES[@]}"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap and buildah's chroot isolation mount file systems)"
for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null 2>&1 \
    || fail "no '$tool' on PATH; install Debian's package: apt-get install -y $tool"
done

mkdir -p "$CACHE/rootfs" "$CACHE/archives" "$OUT"
# One build at a time per cache (two checkouts may share it): the next waits for this one.
exec 9>"$CACHE/.lock"
flock 9
buildah=(buildah --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver vfs)

# digest FILE...: one short hash over the files' names and contents (caches' keys).
digest() {
  local f
  for f in "$@"; do
    printf '%s\n' "${f#"$repo"/}"
    cat "$f"
  done | sha256sum | cut -c1-16
}

# tree_files DIR...: the files an image copies from these folders, in a stable order.
tree_files() {
  find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' | LC_ALL=C sort
}

# base NAME PACKAGES: a local image "localhost/pht-images/NAME:KEY" from a debootstrap root
# filesystem; prints its reference.
base() {
  local name=$1 packages=$2
  local key
  key=$(printf '%s\n%s\n%s\n%s\n' "$SUITE" "$MIRROR" "$packages" "$(sed -n '/^base()/,/^}/p' "$0")" \
    | sha256sum | cut -c1-16)
  local ref="localhost/pht-images/$name:$key" rootfs="$CACHE/rootfs/$name-$key"
  if "${buildah[@]}" inspect --type image "$ref" >/dev/null 2>&1; then
    echo "$ref"
    return
  fi
  if [ ! -f "$rootfs/.complete" ]; then
    say "debootstrap $SUITE ($packages) into $rootfs ..."
    local started=$SECONDS
    rm -rf "$rootfs.partial"
    debootstrap --variant=minbase --include="$packages" "$SUITE" "$rootfs.partial" "$MIRROR" \
      >"$CACHE/rootfs/$name-$key.log" 2>&1 \
      || { tail -20 "$CACHE/rootfs/$name-$key.log" >&2; fail "debootstrap failed"; }
    # What only the package manager's own caches, documentation and manual pages need.
    rm -rf "$rootfs.partial"/var/lib/apt/lists/* "$rootfs.partial"/var/cache/apt/* \
      "$rootfs.partial"/usr/share/doc/* "$rootfs.partial"/usr/share/man/* \
      "$rootfs.partial"/usr/share/info/* "$rootfs.partial"/var/log/*.log
    rm -rf "$rootfs"
    mv "$rootfs.partial" "$rootfs"
    touch "$rootfs/.complete"
    say "debootstrap took $((SECONDS - started)) s"
  fi
  local container tarball="$CACHE/rootfs/$name-$key.tar"
  tar -C "$rootfs" --exclude=./.complete -cf "$tarball" .
  container=$("${buildah[@]}" from --quiet scratch)
  "${buildah[@]}" add --quiet "$container" "$tarball" / >/dev/null
  "${buildah[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd '["python3"]' "$container"
  "${buildah[@]}" commit --quiet --rm "$container" "$ref" >/dev/null
  rm -f "$tarball"
  echo "$ref"
}

# image NAME: the Dockerfile, its build context, the files its key covers and its tag.
image() {
  case $1 in
    operator | station-api)
      dockerfile=$repo/$1/Dockerfile
      context=$repo
      inputs=("$repo/pyproject.toml" "$repo/README.md" "$repo/requirements/station.lock"
        "$repo/requirements/build.lock")
      mapfile -t -O ${#inputs[@]} inputs < <(tree_files "$repo/contract" "$repo/operator" \
        "$repo/station-api" "$repo/cli")
      tag=ghcr.io/pht-station/$1:$VERSION
      ;;
    *)
      [ -f "$repo/trains/examples/$1/Dockerfile" ] || fail "no image named '$1'"
      dockerfile=$repo/trains/examples/$1/Dockerfile
      context=$repo/trains
      mapfile -t inputs < <(tree_files "$repo/trains/sdk" "$repo/trains/examples/$1")
      tag=ghcr.io/pht-station/trains/$1:$VERSION
      ;;
  esac
}

build() {
  local name=$1 dockerfile context tag inputs=()
  image "$name"
  local key
  key=$({
    echo "$runtime_base $build_base $tag"
    digest "$0" "$dockerfile" "${inputs[@]}"
  } | sha256sum | cut -c1-16)
  local archive="$CACHE/archives/$name-$key.tar"
  if [ -f "$archive" ]; then
    say "$name: reusing $archive"
  else
    say "$name: building $tag from ${dockerfile#"$repo"/} ..."
    local started=$SECONDS log="$CACHE/archives/$name-$key.log"
    local local_ref="localhost/pht-images/build-$name:$key" volumes=()
    [ -z "$CA_BUNDLE" ] || volumes=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
    if ! "${buildah[@]}" bud --isolation chroot --pull=never --layers=false --format oci \
      --build-arg "PYTHON_IMAGE=$runtime_base" --build-arg "PYTHON_BUILD_IMAGE=$build_base" \
      "${volumes[@]}" \
      -f "$dockerfile" -t "$local_ref" "$context" >"$log" 2>&1; then
      tail -30 "$log" >&2
      fail "$name: buildah bud failed (full log: $log)"
    fi
    "${buildah[@]}" push --quiet "$local_ref" "oci-archive:$archive.partial:$tag" >>"$log" 2>&1 \
      || { tail -10 "$log" >&2; fail "$name: buildah push failed"; }
    "${buildah[@]}" rmi "$local_ref" >/dev/null 2>&1 || true
    "${buildah[@]}" rmi --prune >/dev/null 2>&1 || true
    mv "$archive.partial" "$archive"
    say "$name: built in $((SECONDS - started)) s, $(du -h "$archive" | cut -f1) archive"
  fi
  ln -f "$archive" "$OUT/$name.tar" 2>/dev/null || cp -f "$archive" "$OUT/$name.tar"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${DEFAULT_IMAGES[@]}")
started=$SECONDS
runtime_base=$(base python "$RUNTIME_PACKAGES")
build_base=$(base python-build "$BUILD_PACKAGES")
for name in "${names[@]}"; do
  build "$name"
done
say "${#names[@]} image(s) in $OUT after $((SECONDS - started)) s"
