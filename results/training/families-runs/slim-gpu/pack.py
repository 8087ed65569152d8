"""A trained model folder made small enough to come back: its files in a tar, the weights as fp16 parts.

python3 pack.py MODEL_DIR OUT_PREFIX [PART_MB]  ->  OUT_PREFIX.tar (all but the weights), OUT_PREFIX.fp16.part-NN
"""
import sys
import tarfile
from pathlib import Path

from safetensors.torch import load_file, save_file

src, prefix = Path(sys.argv[1]), sys.argv[2]
part = int(float(sys.argv[3] if len(sys.argv) > 3 else 15) * 1e6)
with tarfile.open(prefix + ".tar", "w") as tar:
    for f in sorted(src.iterdir()):
        if f.name != "model.safetensors":
            tar.add(f, arcname=f.name)
t = load_file(src / "model.safetensors")
tmp = Path(prefix + ".fp16")
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in t.items()}, tmp, metadata={"format": "pt"})
data = tmp.read_bytes()
tmp.unlink()
for i in range(0, len(data), part):
    Path(f"{prefix}.fp16.part-{i // part:02d}").write_bytes(data[i:i + part])
print("packed", src, len(data), "bytes of fp16 weights")
