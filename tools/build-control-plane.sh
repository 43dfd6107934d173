#!/usr/bin/env bash
# Build a real Kubernetes control plane from pinned Go modules:
#   kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes, tools/kube),
#   etcd (go.etcd.io/etcd/server/v3, tools/etcd) and kwok (sigs.k8s.io/kwok, tools/kwok).
# Binaries go to a cache outside the repository, in a folder named by a hash of the wrapper
# modules, this script and the Go version; a folder that is complete is reused as it is.
# Prints the binary folder on its last line. Bounded by PHT_CONTROL_PLANE_BUILD_TIMEOUT seconds.
# With --check it builds nothing: it prints the folder if it is complete and exits 3 if not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KUBE_VERSION=v1.37.2
KUBE_MINOR=37
TIMEOUT=${PHT_CONTROL_PLANE_BUILD_TIMEOUT:-3600}
CACHE_ROOT=${PHT_CONTROL_PLANE_CACHE:-$HOME/.cache/pht-control-plane}
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

if ! command -v go >/dev/null 2>&1; then
  echo "build-control-plane: no 'go' on PATH; the control plane is built from Go modules (Go 1.26)" >&2
  exit 2
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"

key=$( {
  cat "$0"
  for m in kube etcd kwok; do cat "$here/$m/go.mod" "$here/$m/go.sum"; done
  go version
} | sha256sum | cut -c1-16)
out="$CACHE_ROOT/$key"

complete() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$out/$b" ] || return 1; done
  [ -f "$out/.complete" ]
}
if complete; then
  echo "build-control-plane: reusing $out" >&2
  echo "$out"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "build-control-plane: no complete build in $out (run 'make tools')" >&2
  exit 3
fi

work="$out.partial.$$"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

# build MODULE_DIR WHAT ARGS...: one `go build` in a wrapper module; a failure names the
# module and shows Go's own error lines.
build() {
  local dir=$1 what=$2
  shift 2
  local log="$work/build-$(basename "$dir").log"
  echo "build-control-plane: building $what ..." >&2
  local rc=0
  (cd "$dir" && timeout "$TIMEOUT" go build "$@") >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "build-control-plane: building $what failed (module $dir, exit $rc):" >&2
    tail -n 40 "$log" >&2
    [ "$rc" -eq 124 ] && echo "build-control-plane: timed out after ${TIMEOUT}s" >&2
    exit 1
  fi
}

ld="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$KUBE_MINOR"
  ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
build "$here/kube" "k8s.io/kubernetes $KUBE_VERSION" \
  -tags selinux,notest,grpcnotrace -ldflags "$ld" -o "$work/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
build "$here/etcd" "go.etcd.io/etcd/server/v3" -ldflags "-s -w" -o "$work/etcd" go.etcd.io/etcd/server/v3
build "$here/kwok" "sigs.k8s.io/kwok" -ldflags "-s -w" -o "$work/kwok" sigs.k8s.io/kwok/cmd/kwok

# kwok's default stages ship in its module; keep a copy beside the binary for the fixture.
kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$work/kwok-stages"
for s in node/fast node/heartbeat-with-lease pod/fast; do
  for f in "$kwok_dir/kustomize/stage/$s"/*.yaml; do
    case "$(basename "$f")" in kustomization.yaml) continue ;; esac
    cp "$f" "$work/kwok-stages/$(echo "$s" | tr / -)-$(basename "$f")"
  done
done

"$work/kube-apiserver" --version >&2
"$work/etcd" --version >&2
echo "built in $(($(date +%s) - started)) s with $(go version)" >"$work/.complete"
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
# Older keys are builds of earlier pins: drop them so the cache does not grow without bound.
find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -not -name "$key" -exec rm -rf {} + 2>/dev/null || true
echo "build-control-plane: built in $(($(date +%s) - started)) s" >&2
echo "$out"
