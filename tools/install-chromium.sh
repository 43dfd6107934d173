#!/usr/bin/env bash
# Debian's chromium, the browser the steward console's browser tests (tests/browser) drive
# through Playwright, which cannot download its own browser here. Idempotent: installs it with
# apt-get when it is missing and this runs as root. Where it cannot, it says so in one line and
# carries on: the browser tests then fail with the same reason instead of being skipped.
# PHT_CHROMIUM names another browser binary (the browser tests read it too).
set -euo pipefail
CHROMIUM=${PHT_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: the browser tests need Debian's chromium: apt-get install -y chromium" >&2
  exit 0
fi
echo "install-chromium: apt-get install -y chromium" >&2
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }
# Package lists older than the mirror's chromium are refreshed once.
if ! install && ! { apt-get update -qq >/dev/null 2>&1 && install; }; then
  echo "install-chromium: apt-get could not install chromium; the browser tests will fail" >&2
fi
