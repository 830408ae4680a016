#!/usr/bin/env bash
# The accelerator check (scripts/device_check.py), from the repository root, output unbuffered:
#   ./scripts/device_check.sh --output_dir=/tmp/device_check          # the full check
#   ./scripts/device_check.sh --smoke --output_dir=/tmp/dc --overwrite  # CPU, a few minutes
# Python: $PYTHON if set, else .venv/bin/python where there is one, else python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1
exec "$PYTHON" -m scripts.device_check "$@"
