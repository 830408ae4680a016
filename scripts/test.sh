#!/usr/bin/env bash
# Sets up .venv and runs the suite on 8 simulated CPU devices (tests/conftest.py sets
# XLA_FLAGS=--xla_force_host_platform_device_count=8), two pytest workers.
source "$(dirname "$0")/_venv.sh" requirements-test.txt
exec .venv/bin/python -m pytest -q -n "${TEST_WORKERS:-2}" -p no:cacheprovider tests "$@"
