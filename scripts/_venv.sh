# Sourced by demo.sh and test.sh: makes .venv (once) and installs a requirements file into it.
# Once installed, with every requirements file unchanged since, pip is skipped (no network
# needed; scripts/_installed.py keeps the record; delete .venv/.installed.json to reinstall).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python scripts/_installed.py check "$1"; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # On the Python the lock was made with, install exactly the versions the tests passed with.
  constraints=()
  if [ -f requirements-lock.txt ] && .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    constraints=(-c requirements-lock.txt)
  fi
  # (${a[@]+...}: an empty array under set -u, also in macOS' bash 3.2)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$1" \
    ${constraints[@]+"${constraints[@]}"}
  .venv/bin/python scripts/_installed.py mark "$1"
fi
