"""INT8 static quantization of a bundle's FP32 ONNX for the CPU (onnxruntime.quantization, QDQ format).

Convs get per-channel int8 weights and uint8 activations calibrated (min/max) on a few photographs shipped in
styleengine/assets/calibration; ONNX Runtime fuses DQ->Conv->Q into QLinearConv (VNNI/AVX-512 kernels).
InstanceNormalization, Pad and Resize stay FP32. The quantized model is built once per FP32 model and cached
under <cache>/int8/, keyed by the FP32 model's sha256. benchmarks/cpu_speed.py measures its speed and quality.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import numpy as np

from styleengine.errors import StyleEngineError
from styleengine.fsutil import atomic_path, sha256_file

CALIBRATION_DIR = Path(__file__).resolve().parent.parent / "styleengine" / "assets" / "calibration"
# Calibration frames are resized to this (W, H): activation ranges after InstanceNorm barely depend on size.
CALIBRATION_SIZE = (320, 240)
QUANT_VERSION = "qdq-conv-minmax-v1"  # part of the cache key: change it when the recipe changes


def calibration_frames(folder: Path | None = None, size: tuple[int, int] = CALIBRATION_SIZE) -> list[np.ndarray]:
    from PIL import Image

    folder = Path(folder or CALIBRATION_DIR)
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise StyleEngineError(f"no calibration images in {folder}")
    frames = []
    for f in files:
        with Image.open(f) as im:
            frames.append(np.asarray(im.convert("RGB").resize(size, Image.BILINEAR), dtype=np.uint8)[None])
    return frames


def quantize_onnx(fp32_path: Path, out_path: Path, frames: list[np.ndarray] | None = None) -> Path:
    """Write the QDQ INT8 model of `fp32_path` to `out_path` (atomically)."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise StyleEngineError(f"INT8 quantization needs onnxruntime's quantization tools and onnx ({exc})") from None
    frames = frames if frames is not None else calibration_frames()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(frames)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {"input": x}

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d, _quiet():
        pre = Path(d) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        with atomic_path(out_path, suffix=".onnx") as tmp:
            quantize_static(str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv"], calibrate_method=CalibrationMethod.MinMax)
    return out_path


def int8_model(bundle) -> Path:
    """The cached INT8 model for `bundle`'s FP32 ONNX, built on first use."""
    from .styles import cache_root

    fp32 = bundle.onnx("fp32")
    if fp32 is None:
        raise StyleEngineError(f"{bundle.path}: bundle has no fp32 ONNX model to quantize")
    key = sha256_file(fp32)[:24]
    target = cache_root() / "int8" / f"{key}-{QUANT_VERSION}.onnx"
    if not target.is_file():
        logging.getLogger(__name__).info("quantizing %s to INT8 (once; cached at %s)", fp32, target)
        quantize_onnx(fp32, target)
    return target


@contextlib.contextmanager
def _quiet():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs every pre-processing step at INFO/WARNING
    try:
        yield
    finally:
        root.setLevel(level)
