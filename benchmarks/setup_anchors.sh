#!/usr/bin/env bash
# The anchor engines for benchmarks/engine.py, in their own virtual environment
# (kept apart from lsr's so that their dependencies never leak into it).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv-anchors
.venv-anchors/bin/python -m pip install --quiet numpy scipy pandas pyseismic-lsr bmp pyterrier-pisa
.venv-anchors/bin/python -c "import seismic, bmp, pyterrier_pisa; print('anchors ready')"
