"""Impact quantization: float32 impacts to uint8 / uint16 codes with one global scale.

``code = max(1, round(impact / scale))`` with ``scale = max_impact / (2**bits - 1)``, and an
impact is read back as ``float32(code) * scale``. Every impact stays > 0 (a posting never
vanishes), and the error is at most ``scale / 2`` for impacts of at least ``scale / 2`` (smaller
impacts are rounded up to ``scale``). Search over a quantized index is exact with respect to the
de-quantized impacts; the effect on effectiveness is what the benchmark reports.

Example:
    >>> import numpy as np
    >>> from index.quantize import quantize, dequantize
    >>> codes, scale = quantize(np.array([0.001, 0.5, 2.0], np.float32), "uint8")
    >>> codes.tolist(), round(float(scale), 6)
    ([1, 64, 255], 0.007843)
"""

from __future__ import annotations

import numpy as np

DTYPES = {"uint8": np.uint8, "uint16": np.uint16}


def check_quantization(quantization: str | None) -> str | None:
    if quantization in (None, "none", "float32"):
        return None
    if quantization not in DTYPES:
        raise ValueError(f"quantization must be None, 'uint8' or 'uint16', got {quantization!r}")
    return quantization


def scale_for(max_impact: float, quantization: str) -> np.float32:
    top = np.iinfo(DTYPES[quantization]).max
    scale = np.float32(max_impact) / np.float32(top) if max_impact > 0 else np.float32(1.0)
    return np.float32(scale if scale > 0 else np.float32(1.0))


def quantize(impacts: np.ndarray, quantization: str, scale: np.float32 | None = None):
    """Codes and scale for float32 ``impacts`` (the scale from their maximum unless given)."""
    dtype = DTYPES[quantization]
    top = np.iinfo(dtype).max
    if scale is None:
        scale = scale_for(float(impacts.max()) if impacts.size else 0.0, quantization)
    codes = np.rint(impacts.astype(np.float64) / float(scale))
    np.clip(codes, 1, top, out=codes)
    return codes.astype(dtype), np.float32(scale)


def dequantize(codes: np.ndarray, scale: np.float32) -> np.ndarray:
    """float32 impacts as the kernels compute them: ``float32(code) * scale``."""
    return codes.astype(np.float32) * np.float32(scale)
