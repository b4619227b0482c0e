"""Does the FP16 graph overflow at 4K? FP16 emulation of model_fp16.onnx's precision policy on a real frame.

    python benchmarks/fp16_overflow.py [--checkpoint M.pt] [--image IMG] [--size 2160x3840] [--stress-size 1080x1920]
    python benchmarks/fp16_overflow.py --smoke [--out F]     # seconds: 64x96 photo, 32x48 stress, 16x24 crosscheck

Method (an honest simulation on the CPU, because ONNX Runtime's CPU provider computes FP16 graphs in FP32 and
torch half-precision convolutions on this CPU are impractically slow at 4K):
  1. FP32 pass: forward hooks record, per layer, max |activation| and, for every InstanceNormalization input,
     the magnitudes its reductions reach (per-channel sum over H*W and sum of squares) -- what an FP16
     InstanceNorm would have to hold.
  2. FP16 pass emulating export/fp16.py's policy exactly: conv weights/biases rounded to FP16, the uint8 input
     is exact in FP16, every conv / residual-add output is rounded to FP16 (FP32 accumulation inside the conv,
     like tensor-core kernels), InstanceNormalization computed in FP32 from FP16 inputs and rounded to FP16 on
     output, ReLU/pad/nearest-upsample are exact in FP16, final Clip+Round on the FP16 value. Any value beyond
     the FP16 range (65504) becomes inf and is counted.
  3. FP16-vs-FP32 error of the uint8 outputs.
A second, smaller "stress" frame (0/255 blocks + noise: maximal contrast) checks local worst cases; conv maxima are
local, only the InstanceNorm reductions grow with resolution, and those are FP32 in our graph.
Without --checkpoint: the first built-in style's model.pt. Without --image: kodim23 from ../shared/data, else the
bundled sample photo.
Result: benchmarks/results/fp16_overflow.json (+ environment block), or --out; --smoke writes to --out or a
temporary file, never to results/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fp16_overflow.json"
DEFAULT_IMAGE = "/work/shared/data/content/kodak24/kodim23.png"
FP16_MAX = 65504.0


def find_checkpoint() -> Path | None:
    """A trained model if one exists: the built-in styles' model.pt (built-ins are bundles), then runs/**/*.pt."""
    from styleengine.engine.builtin_styles import list_builtins

    for b in list_builtins():
        if b.checkpoint.is_file():
            return b.checkpoint
    hits = sorted(ROOT.glob("runs/**/*.pt"))
    return hits[0] if hits else None


def default_image() -> str:
    from styleengine.engine.builtin_styles import sample_path

    return DEFAULT_IMAGE if Path(DEFAULT_IMAGE).is_file() else str(sample_path("photo"))


def load_frame(image: str, h: int, w: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(image).convert("RGB")
    # Cover-resize then center-crop to exactly h x w (upscaling a photo is smoother than native 4K; the stress
    # frame below covers high-contrast content).
    s = max(h / img.height, w / img.width)
    img = img.resize((max(w, round(img.width * s)), max(h, round(img.height * s))), Image.BICUBIC)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return np.array(img.crop((left, top, left + w, top + h)), dtype=np.uint8)[None]


def stress_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 2, ((h + 7) // 8, (w + 7) // 8, 3)).repeat(8, 0).repeat(8, 1)[:h, :w] * 255
    noise = rng.normal(0, 60, (h, w, 3))
    return np.clip(blocks + noise, 0, 255).astype(np.uint8)[None]


def run_fp32(model, x):
    """FP32 forward with per-layer statistics."""
    import torch
    from torch import nn

    stats: dict[str, dict] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.InstanceNorm2d)) or type(mod).__name__ == "ResidualBlock":
            def hook(m, inp, out, name=name):
                s = stats.setdefault(name, {"kind": type(m).__name__})
                s["max_abs_out"] = float(out.abs().max())
                if isinstance(m, nn.InstanceNorm2d):
                    xi = inp[0]
                    s["pixels"] = xi.shape[-1] * xi.shape[-2]
                    s["max_abs_in"] = float(xi.abs().max())
                    s["max_channel_sum"] = float(xi.sum((-1, -2), dtype=torch.float64).abs().max())
                    s["max_channel_sumsq"] = float(xi.square().sum((-1, -2), dtype=torch.float64).max())
                    s["max_sq"] = s["max_abs_in"] ** 2
            hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    return y, stats


def run_fp16_emulated(model, x):
    """Forward emulating the FP16 ONNX policy (see module docstring); returns output and overflow counts."""
    import copy

    import torch
    from torch import nn

    m = copy.deepcopy(model)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                mod.weight.copy_(mod.weight.half().float())
                if mod.bias is not None:
                    mod.bias.copy_(mod.bias.half().float())
    info: dict[str, dict] = {}

    def round16(name):
        def hook(mod, inp, out):
            h = out.half()
            info[name] = {"inf": int(torch.isinf(h).sum()), "max_abs": float(out.abs().max())}
            return h.float()
        return hook

    hooks = [mod.register_forward_hook(round16(name)) for name, mod in m.named_modules()
             if isinstance(mod, (nn.Conv2d, nn.InstanceNorm2d)) or type(mod).__name__ == "ResidualBlock"]
    with torch.no_grad():
        y = m(x.half().float())
    for h in hooks:
        h.remove()
    return y, info


def run_torch_half(model, x):
    """Real torch FP16 arithmetic on the CPU (convs, adds, ReLU, upsample in half; InstanceNorm in FP32, as in
    the FP16 ONNX). Slow on CPUs without native FP16, so only used on a small crop to validate the emulation."""
    import copy

    import torch
    from torch import nn

    m = copy.deepcopy(model).half()
    for mod in m.modules():
        if isinstance(mod, nn.InstanceNorm2d):
            mod.float()
            mod.register_forward_pre_hook(lambda _m, inp: (inp[0].float(),))
            mod.register_forward_hook(lambda _m, _inp, out: out.half())
    with torch.no_grad():
        return m(x.half()).float()


def crosscheck(model, frame: np.ndarray) -> dict:
    """Emulation vs real torch half on the same small frame (uint8 outputs)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(0, 3, 1, 2).float()
    t0 = time.perf_counter()
    real = to_uint8(run_torch_half(model, x)).astype(np.int16)
    t1 = time.perf_counter()
    emu = to_uint8(run_fp16_emulated(model, x)[0].half().float()).astype(np.int16)
    ref = to_uint8(run_fp32(model, x)[0]).astype(np.int16)
    return {"shape": list(frame.shape), "torch_half_seconds": round(t1 - t0, 1),
            "emulated_vs_torch_half": {"max_abs_diff": int(np.abs(emu - real).max()),
                                       "mean_abs_diff": round(float(np.abs(emu - real).mean()), 4)},
            "torch_half_vs_fp32": {"max_abs_diff": int(np.abs(real - ref).max()),
                                   "mean_abs_diff": round(float(np.abs(real - ref).mean()), 4)},
            "emulated_vs_fp32": {"max_abs_diff": int(np.abs(emu - ref).max()),
                                 "mean_abs_diff": round(float(np.abs(emu - ref).mean()), 4)}}


def to_uint8(y):
    import torch

    return y.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def analyse(model, frame: np.ndarray) -> dict:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(0, 3, 1, 2).float()
    t0 = time.perf_counter()
    y32, stats = run_fp32(model, x)
    t1 = time.perf_counter()
    y16, info = run_fp16_emulated(model, x)
    t2 = time.perf_counter()
    a, b = to_uint8(y32).astype(np.int16), to_uint8(y16.half().float()).astype(np.int16)
    d = np.abs(a - b)
    conv_layers = {k: v for k, v in stats.items() if v["kind"] == "Conv2d"}
    in_layers = {k: v for k, v in stats.items() if v["kind"] == "InstanceNorm2d"}
    worst_conv = max(conv_layers.items(), key=lambda kv: kv[1]["max_abs_out"])
    worst_res = max(((k, v) for k, v in stats.items() if v["kind"] == "ResidualBlock"),
                    key=lambda kv: kv[1]["max_abs_out"], default=(None, {"max_abs_out": 0.0}))
    return {
        "shape": list(frame.shape),
        "fp16_emulated_overflows": sum(v["inf"] for v in info.values()),
        "layers_with_overflow": [k for k, v in info.items() if v["inf"]],
        "max_abs_activation_fp16_path": max(v["max_abs"] for v in info.values()),
        "worst_conv_output": {"layer": worst_conv[0], "max_abs": worst_conv[1]["max_abs_out"],
                              "headroom_vs_fp16_max": FP16_MAX / max(worst_conv[1]["max_abs_out"], 1e-9)},
        "worst_residual_sum": {"layer": worst_res[0], "max_abs": worst_res[1]["max_abs_out"]},
        "instance_norm_inputs": {
            "max_abs": max(v["max_abs_in"] for v in in_layers.values()),
            "max_square": max(v["max_sq"] for v in in_layers.values()),
            "max_channel_sum": max(v["max_channel_sum"] for v in in_layers.values()),
            "max_channel_sum_of_squares": max(v["max_channel_sumsq"] for v in in_layers.values()),
            "would_overflow_in_fp16": any(max(v["max_channel_sum"], v["max_channel_sumsq"], v["max_sq"]) > FP16_MAX
                                          for v in in_layers.values()),
        },
        "fp16_vs_fp32_uint8": {"max_abs_diff": int(d.max()), "mean_abs_diff": round(float(d.mean()), 4),
                               "pct_pixels_diff_gt_1": round(float((d > 1).mean() * 100), 4)},
        "seconds": {"fp32": round(t1 - t0, 1), "fp16_emulated": round(t2 - t1, 1)},
        "per_layer": {k: {**stats.get(k, {}), "fp16_inf": info.get(k, {}).get("inf")} for k in stats},
    }


def parse_hw(s: str) -> tuple[int, int]:
    h, w = s.lower().split("x")
    return int(h), int(w)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--image", default=None, help=f"default {DEFAULT_IMAGE} (else the bundled sample photo)")
    ap.add_argument("--size", default="2160x3840")
    ap.add_argument("--stress-size", default="1080x1920")
    ap.add_argument("--crosscheck-size", default="64x96", help="small frame for real torch-half vs emulation ('0': skip)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help=f"default {RESULTS}")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long run proving the script works: 64x96 photo, 32x48 stress frame, 16x24 "
                         "crosscheck; writes to --out or a temporary file")
    args = ap.parse_args(argv)
    args.image = args.image or default_image()
    if args.smoke:
        args.size, args.stress_size, args.crosscheck_size = "64x96", "32x48", "16x24"
        args.out = args.out or Path(tempfile.mkdtemp(prefix="fp16_overflow_smoke_")) / "fp16_overflow.json"
    args.out = args.out or RESULTS

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.core.fsutil import atomic_path
    from styleengine.core.network import TransformerNet
    from styleengine.engine.environment import environment

    ckpt_path = args.checkpoint or find_checkpoint()
    if ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path)
        model, source = ckpt.build_model("cpu"), {"checkpoint": str(ckpt_path), "style": ckpt.style_name,
                                                  "preset": ckpt.arch.preset, "trained": True}
    else:
        torch.manual_seed(0)
        model = TransformerNet().eval()
        # Like a trained net, make the output span the pixel range: scale the last conv so its output has
        # std ~60 around 127 on this frame (otherwise everything clamps to 0 and the error measure is void).
        with torch.no_grad():
            probe = model(torch.from_numpy(load_frame(args.image, 256, 384)).permute(0, 3, 1, 2).float())
            k = 60.0 / max(float(probe.std()), 1e-6)
            model.deconv3.conv2d.weight.mul_(k)
            model.deconv3.conv2d.bias.mul_(k).add_(127.0 - float(probe.mean()) * k)
        source = {"checkpoint": None, "preset": model.config.preset, "trained": False,
                  "note": "no trained model available when run: PyTorch default random init, last conv rescaled "
                          "so the output spans 0-255; rerun with --checkpoint on a trained model"}
    results = {"model": source, "method": __doc__.split("Method")[1].split("Result:")[0].strip()}
    if args.crosscheck_size != "0":
        ch, cw = parse_hw(args.crosscheck_size)
        print(f"crosscheck {ch}x{cw} (real torch half vs emulation) ...", file=sys.stderr, flush=True)
        results["crosscheck"] = crosscheck(model, load_frame(args.image, ch, cw))
    if args.size != "0":
        h, w = parse_hw(args.size)
        print(f"photo {h}x{w} ...", file=sys.stderr, flush=True)
        results["photo"] = analyse(model, load_frame(args.image, h, w))
        results["photo"]["image"] = args.image
    if args.stress_size and args.stress_size != "0":
        sh, sw = parse_hw(args.stress_size)
        print(f"stress {sh}x{sw} ...", file=sys.stderr, flush=True)
        results["stress"] = analyse(model, stress_frame(sh, sw))
    results["environment"] = environment()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if "crosscheck" in results:
        c = results["crosscheck"]
        print(f"crosscheck {c['shape']}: emulated vs real torch half max diff {c['emulated_vs_torch_half']['max_abs_diff']}"
              f" (mean {c['emulated_vs_torch_half']['mean_abs_diff']}); torch half vs fp32 max diff "
              f"{c['torch_half_vs_fp32']['max_abs_diff']}")
    for key in ("photo", "stress"):
        r = results.get(key)
        if r:
            print(f"{key} {r['shape']}: fp16 overflows={r['fp16_emulated_overflows']} "
                  f"max|act|={r['max_abs_activation_fp16_path']:.1f} (fp16 max 65504) "
                  f"IN reductions would overflow in fp16: {r['instance_norm_inputs']['would_overflow_in_fp16']} "
                  f"fp16 vs fp32 uint8 max diff={r['fp16_vs_fp32_uint8']['max_abs_diff']} "
                  f"mean={r['fp16_vs_fp32_uint8']['mean_abs_diff']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
