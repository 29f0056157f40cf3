#!/usr/bin/env bash
# Set up (if needed) and run the test suite: CPU only, tiny in-process models, no downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_test_clients.sh
exec .venv/bin/python -m pytest -q "$@"
