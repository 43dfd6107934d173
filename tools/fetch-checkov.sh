#!/usr/bin/env bash
# Install checkov into its own virtual environment, .tools/checkov-venv (git-ignored).
# Why a separate venv: checkov pins many libraries (boto3, pydantic ranges, networkx, ...)
# that conflict with the project's own pins in .venv. The chart tests look for
# .tools/checkov-venv/bin/checkov and call this script when it is missing. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.tools/checkov-venv"
CHECKOV_VERSION="3.3.30"
if [ -x "$venv/bin/checkov" ] && "$venv/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  exit 0
fi
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "checkov==$CHECKOV_VERSION"
"$venv/bin/checkov" --version
