"""fp16 safetensors (carried small) back to fp32: python3 fp32.py SRC DST"""
import sys

from safetensors.torch import load_file, save_file

t = load_file(sys.argv[1])
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in t.items()}, sys.argv[2],
          metadata={"format": "pt"})
print("fp32:", sys.argv[2], len(t), "tensors")
