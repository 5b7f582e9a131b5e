#!/usr/bin/env bash
# A separate environment for the authors' decode-mcd 1.0.0rc1 (it needs pandas < 3, ours uses pandas 3).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-decode/bin/python ] || python3 -m venv .venv-decode
.venv-decode/bin/python -m pip install -q --disable-pip-version-check "decode-mcd==1.0.0rc1" "pandas<3" pymoo numpy dill 2>&1 | grep -v "^WARNING: Location" || true
.venv-decode/bin/python -c "import decode_mcd; print('decode-mcd ready')"
