#!/bin/bash
# Round 2 on the same GPU machine, right after run.sh (splade-tiny and MiniLM still staged in /tmp/stage):
# the recipe without its FLOPS regularizers (both backbones) and MiniLM at a lower learning rate. The
# 175 s limit stopped the three runs before their last evaluation, so each best/ is its mid-run
# evaluation (eval_log.jsonl says which step) and they have no summary.json.
export PYTHONPATH=/tmp/site:$PWD LSR_DATA=.gpu/c2/datasets PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 NUMBA_NUM_THREADS=4 OMP_NUM_THREADS=4
N=.gpu/c2/neg
TRAIN="[{\"jsonl\": \"$N/scifact.jsonl.gz\", \"corpus\": \"scifact\", \"weight\": 1.5}, {\"jsonl\": \"$N/nfcorpus.jsonl.gz\", \"corpus\": \"nfcorpus\", \"weight\": 1.0}]"
R=/tmp/runs2
timeout 175 python3 scripts/train_on_budget.py slim --minutes 2 --calibrate 10 --evals 2 --set "data.train=$TRAIN" \
  --set model.bf16=false --set optim.device=cuda --set output_dir=$R --set checkpoint.every=100000 \
  --variant 'tiny-noreg:model.backbone="/tmp/stage/splade-tiny",regularizer.doc.weight=0,regularizer.query.weight=0' \
  --variant 'mini-noreg:model.backbone="/tmp/stage/minilm",regularizer.doc.weight=0,regularizer.query.weight=0' \
  --variant 'mini-lowlr:model.backbone="/tmp/stage/minilm",optim.lr=1e-5' > $OUT/train2.log 2>&1
for v in $R/*/best; do n=$(basename $(dirname $v))
  timeout 110 python3 benchmarks/families.py --slim $v --device cuda --datasets scifact,nfcorpus --out /tmp/res2/$n > /tmp/res2-$n.log 2>&1 &
done; wait
tar -czf $OUT/res2.tar.gz -C /tmp/res2 .
tar -czf $OUT/train2-logs.tar.gz -C $R --exclude='*.safetensors' --exclude=checkpoints --exclude=calibration --exclude=tokenizer.json .
