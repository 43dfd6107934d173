#!/usr/bin/env bash
# Install the OpenID provider the identity tests run (oidc-provider from npm, pinned with
# integrity hashes in tools/oidc-provider/package-lock.json) with `npm ci` into a cache outside
# the repository, in a folder named by a hash of the lock file and the Node.js version; a
# complete folder is reused. tools/oidc-provider/node_modules then links to it, so
# `node tools/oidc-provider/server.mjs CONFIG.json` finds its modules.
# With --check it installs nothing: it exits 3 if the link or the cached modules are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/oidc-provider"
CACHE_ROOT=${PHT_OIDC_PROVIDER_CACHE:-$HOME/.cache/pht-oidc-provider}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "fetch-oidc-provider: no 'node'/'npm' on PATH; the identity tests run oidc-provider with Node.js 20.19 or later" >&2
  exit 2
fi
key=$( { cat "$src/package.json" "$src/package-lock.json"; node --version; } | sha256sum | cut -c1-16)
out="$CACHE_ROOT/$key"

if [ ! -f "$out/.complete" ]; then
  if [ "${1:-}" = "--check" ]; then
    echo "fetch-oidc-provider: no installed provider in $out (run 'make tools')" >&2
    exit 3
  fi
  work="$out.partial.$$"
  rm -rf "$work"
  mkdir -p "$work"
  trap 'rm -rf "$work"' EXIT
  cp "$src/package.json" "$src/package-lock.json" "$work/"
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  touch "$work/.complete"
  rm -rf "$out"
  mv "$work" "$out"
  trap - EXIT
fi
if [ "$(readlink "$src/node_modules" 2>/dev/null)" != "$out/node_modules" ]; then
  if [ "${1:-}" = "--check" ]; then
    echo "fetch-oidc-provider: $src/node_modules does not link to $out (run 'make tools')" >&2
    exit 3
  fi
  rm -rf "$src/node_modules"
  ln -s "$out/node_modules" "$src/node_modules"
fi
echo "$out"
