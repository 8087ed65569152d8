#!/bin/bash
# Call 2 of 2 on the borrowed GPU (issue 20, SLIM): SLIM variants side by side on one GPU, each fitted to
# MINUTES of training with dev evaluations (scripts/train_on_budget.py, NFCorpus dev), then every variant's
# dev-best model on SciFact and NFCorpus test (benchmarks/families.py --device cuda). Variants: the committed
# recipe from splade-tiny (the control), the same with the dense teacher alone, and both again from
# all-MiniLM-L6-v2 with a fresh MLM head tied to its word embeddings (staged by call 1, when it is there).
set -o pipefail
MINUTES=${MINUTES:-3.5}; CAL=${CAL:-20}; DEVICE=${DEVICE:-cuda}; EVALS=${EVALS:-3}; TT=${TT:-330}; TE=${TE:-170}
SITE=${SITE:-/tmp/site}
[ -f $SITE/.ok ] || { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE .whl/*.whl && touch $SITE/.ok; } || exit 1
export PYTHONPATH=$SITE:$PWD LSR_DATA=${LSR_DATA:-.gpu/c2/datasets} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 NUMBA_NUM_THREADS=${NT:-4} OMP_NUM_THREADS=${NT:-4}
S=${STAGE:-/tmp/stage}; R=${RUNS:-/tmp/runs}; mkdir -p $S/splade-tiny $R
if [ ! -f $S/splade-tiny/model.safetensors ]; then
  cp .gpu/c2/splade-tiny/*.json $S/splade-tiny/ && python3 .gpu/c2/fp32.py .gpu/c2/splade-tiny/model.fp16.safetensors $S/splade-tiny/model.safetensors || exit 1
fi
V=(--variant "tiny-ens:model.backbone=\"$S/splade-tiny\"" --variant "tiny-dense:model.backbone=\"$S/splade-tiny\",loss.teacher_weights.bm25=0")
if [ -f $S/minilm.part-aa ]; then
  mkdir -p $S/minilm && cp .gpu/c2/minilm/* $S/minilm/ && cat $S/minilm.part-aa .gpu/c2/minilm.part-ab > $S/minilm16.safetensors \
    && python3 .gpu/c2/fp32.py $S/minilm16.safetensors $S/minilm/model.safetensors \
    && V+=(--variant "mini-ens:model.backbone=\"$S/minilm\"" --variant "mini-dense:model.backbone=\"$S/minilm\",loss.teacher_weights.bm25=0")
else echo "no MiniLM staged (call 1 missing): splade-tiny variants only"; fi
NEG=${NEG:-.gpu/c2/neg}
TRAIN="[{\"jsonl\": \"$NEG/scifact.jsonl.gz\", \"corpus\": \"scifact\", \"weight\": 1.5}, {\"jsonl\": \"$NEG/nfcorpus.jsonl.gz\", \"corpus\": \"nfcorpus\", \"weight\": 1.0}]"
echo "train start $(date +%T)"
timeout $TT python3 scripts/train_on_budget.py slim --minutes $MINUTES --calibrate $CAL --evals $EVALS --set "data.train=$TRAIN" \
  --set model.bf16=false --set optim.device=$DEVICE --set output_dir=$R --set checkpoint.every=100000 "${V[@]}" > $OUT/train.log 2>&1
echo "train rc $? $(date +%T)"; grep -h "best dev\|chosen\|s per step\|failed" $OUT/train.log
tar -czf $OUT/train-logs.tar.gz -C $R --exclude='*.safetensors' --exclude=checkpoints --exclude=calibration . 2>/dev/null
for v in $R/*/best; do n=$(basename $(dirname $v))
  timeout $TE python3 benchmarks/families.py --slim $v --device $DEVICE --datasets scifact,nfcorpus --out /tmp/res/$n > /tmp/res-$n.log 2>&1 &
done; wait; echo "eval done $(date +%T)"
for v in $R/*/best; do n=$(basename $(dirname $v)); echo "== $n"; grep "^| \(scifact\|nfcorpus\)" /tmp/res/$n/families.md || tail -5 /tmp/res-$n.log; done
cp /tmp/res-*.log /tmp/res/ 2>/dev/null; tar -czf $OUT/test-results.tar.gz -C /tmp/res .
for b in tiny mini; do  # the dev-best model of each backbone comes back (weights as fp16 parts)
  best=$(python3 -c "
import json,glob
r=[(e['nDCG@10'],f.split('/')[-2]) for f in glob.glob('$R/$b-*/variant.json') for e in json.load(open(f))['evaluations'] if e.get('best')]
print(max(r)[1] if r else '')")
  [ -n "$best" ] && python3 .gpu/c2/pack.py $R/$best/best $OUT/$best 15
done
ls -la $OUT
