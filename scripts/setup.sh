#!/usr/bin/env bash
# Set up lsr in a virtual environment (.venv) on a fresh machine.
# torch comes first, pinned to 2.13.0: on this project's machines that is the CPU build on local
# disk; any other version would make pip pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".[test,plot,datasets,encoders,models,train,lucene,exports,milvus,serve]"
.venv/bin/python -c "import lsr, index, eval; print('lsr', lsr.__version__, 'installed in .venv')"
