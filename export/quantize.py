"""INT8 static quantization of a bundle's FP32 ONNX for the CPU (onnxruntime.quantization, QDQ format).

Convs get per-channel int8 weights and uint8 activations calibrated (min/max) on a few photographs shipped in
styleengine/assets/calibration; ONNX Runtime fuses DQ->Conv->Q into QLinearConv (VNNI/AVX-512 kernels).
InstanceNormalization, Pad and Resize stay FP32. engine/loaders.py builds it once per FP32 model and caches it.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import numpy as np

from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path
from styleengine.core.paths import assets_dir

# Calibration frames are resized to this (W, H): activation ranges after InstanceNorm barely depend on size.
CALIBRATION_SIZE = (320, 240)
QUANT_VERSION = "qdq-conv-minmax-v2"  # part of the cache key: change it when the recipe changes


VALIDATION_FILES = 2  # the last N calibration images are held out to measure the INT8 quality cost


def calibration_frames(folder: Path | None = None, size: tuple[int, int] = CALIBRATION_SIZE,
                       held_out: bool = False) -> list[np.ndarray]:
    """Calibration frames (held_out=False) or the held-out validation frames (held_out=True)."""
    from PIL import Image

    folder = Path(folder or assets_dir("calibration"))
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) > VALIDATION_FILES:
        files = files[-VALIDATION_FILES:] if held_out else files[:-VALIDATION_FILES]
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
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
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


def measure_quality(fp32_path: Path, int8_path: Path, frames: list[np.ndarray] | None = None) -> dict:
    """INT8 vs FP32 output on held-out frames: worst PSNR, max and mean |difference| in uint8 levels."""
    import onnxruntime as ort

    frames = frames if frames is not None else calibration_frames(held_out=True)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    a = ort.InferenceSession(str(fp32_path), so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(int8_path), so, providers=["CPUExecutionProvider"])
    psnrs, maxd, meand = [], 0, []
    for f in frames:
        d = a.run(None, {"input": f})[0].astype(np.float64) - b.run(None, {"input": f})[0].astype(np.float64)
        mse = float(np.mean(d ** 2))
        psnrs.append(99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse))
        maxd, meand = max(maxd, int(np.abs(d).max())), meand + [float(np.abs(d).mean())]
    return {"psnr_db": round(min(psnrs), 2), "max_abs_diff": maxd, "mean_abs_diff": round(float(np.mean(meand)), 3),
            "frames": len(frames), "recipe": QUANT_VERSION}


@contextlib.contextmanager
def _quiet():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs every pre-processing step at INFO/WARNING
    try:
        yield
    finally:
        root.setLevel(level)
