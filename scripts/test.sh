#!/usr/bin/env bash
# Sets up .venv and runs the suite on 8 simulated CPU devices (tests/conftest.py sets
# XLA_FLAGS=--xla_force_host_platform_device_count=8), two pytest workers.
#   ./scripts/test.sh               the suite (under 15 minutes on 2 cores)
#   ./scripts/test.sh --docs        runs the documentation as a user copies it: every course
#                                   notebook (notebooks/) in a Jupyter kernel and every command
#                                   of README.md, with smoke settings (about 7 minutes; CI runs
#                                   both)
source "$(dirname "$0")/_venv.sh" requirements-test.txt
if [ "${1:-}" = "--docs" ] || [ "${1:-}" = "--notebooks" ]; then   # (--notebooks: its old name)
  shift
  export DLWR_TEST_DOCS=1
  exec .venv/bin/python -m pytest -q -n "${TEST_WORKERS:-2}" -p no:cacheprovider \
    tests/test_notebooks.py tests/test_readme.py "$@"
fi
exec .venv/bin/python -m pytest -q -n "${TEST_WORKERS:-2}" -p no:cacheprovider tests "$@"
