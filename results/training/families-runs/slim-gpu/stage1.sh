#!/bin/bash
# Call 1 of 2 on the borrowed GPU (what travels is capped at 64 MiB a call): stage the first part of
# MiniLM-L6 (fp16) and splade-tiny in /tmp, install the carried wheels, check the stack on the GPU.
set -o pipefail
mkdir -p /tmp/stage/splade-tiny && cp .gpu/c1/minilm.part-aa /tmp/stage/ && cp .gpu/c1/splade-tiny/*.json /tmp/stage/splade-tiny/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && touch /tmp/site/.ok || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
python3 .gpu/c1/fp32.py .gpu/c1/splade-tiny/model.fp16.safetensors /tmp/stage/splade-tiny/model.safetensors || exit 1
timeout 120 python3 .gpu/c1/smoke.py /tmp/stage/splade-tiny ${DEVICE:-cuda} 2>&1 | grep -v Warning | tee $OUT/smoke.log
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
python3 -c "import transformers, numba, ir_measures; print(transformers.__version__, numba.__version__)"
ls -la /tmp/stage
