"""Check the stack on the GPU machine: a SLIM encoder on the device, 3 SLIM training steps, a saved model."""
import sys
import tempfile
import time
from pathlib import Path

import torch

from lsr import load_encoder
from training import Trainer, config_from_dict

backbone, device = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "cuda")
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
enc = load_encoder(f"slim:model={backbone}").to(device)
t0 = time.time()
d = enc.encode_documents(["insulin resistance in muscle cells causes type 2 diabetes"] * 4)
print("slim docs", d.shape, d.nnz, f"{time.time() - t0:.2f}s")
tmp = Path(tempfile.mkdtemp())
trip = tmp / "t.tsv"
rows = [("cat on a mat", "the cat sat on the mat", "stock market money loan rate"),
        ("insulin resistance", "insulin resistance in muscle cells", "fish swim in the river"),
        ("garden roses", "roses need sun and soil in the garden", "dogs bark at the cat"),
        ("bank loan rate", "the bank has a high loan rate", "roses need water")]
trip.write_text("".join("\t".join(r) + "\n" for r in rows))
cfg = config_from_dict({"output_dir": str(tmp / "run"),
                        "model": {"kind": "slim", "backbone": backbone, "doc_max_length": 32, "bf16": False},
                        "data": {"train": [{"triples": str(trip)}], "n_negatives": 1},
                        "regularizer": {"doc": {"kind": "flops", "weight": 1e-4}},
                        "optim": {"lr": 1e-4, "steps": 3, "batch_size": 4, "warmup_steps": 0, "device": device},
                        "checkpoint": {"every": 3, "keep": 1}}, "smoke")
tr = Trainer(cfg, show_progress=False)
for _ in range(3):
    rec = tr.train_step()
print("step", {k: round(float(v), 4) for k, v in rec.items() if isinstance(v, (int, float))})
res = tr.train()
print("saved", res.model_dir, load_encoder(res.model_dir).kind)
print("SMOKE OK")
