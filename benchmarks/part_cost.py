"""What a part of the built-ins' architecture costs at inference: the same weights with and without it, side by side.

Parts (core.network): `phase_bias`, a (3, 4, 4) output bias tiled over the image (one broadcast add on the
network's output); `margin`, 8 px of reflected input around the image, cropped from the output (3.5% more pixels
at 1280x720, 7% at 640x360), which keeps the checkered band trained networks paint along the borders out of the
picture. This script builds two bundles from one built-in's weights — as shipped, and with the part taken out —
and times each through eager torch and the raw runtimes a user would call (ONNX Runtime and OpenVINO with default
settings on model_fp32.onnx) and through the backend styleengine's `auto` picks on this machine, on real video
frames, calls with and without the part alternating frame by frame (medians; the ratio is the median of the
pairs'). It also records how far apart the two outputs are, and each one's border band (engine.quality.border_band,
the input frames' too). Writes benchmarks/results/<part>_cost.{json,md} with the environment block.

    .venv/bin/python benchmarks/part_cost.py [--part phase_bias|margin] [--style starry_night] [--rounds 5]
                                             [--seconds 1.5] [--smoke]
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cpu_runtimes import RESULTS, SIZES, clip_path, real_frames, timing_options, write_results

VARIANTS = ("with", "without")
PARTS = {"phase_bias": "phase bias", "margin": "margin"}


def bundles(style: str, part: str, tmp: Path) -> dict[str, object]:
    """The built-in as shipped, and a bundle of the same weights without `part`."""
    from styleengine.core.bundle import load_bundle
    from styleengine.core.checkpoint import load_checkpoint, save_model
    from styleengine.core.network import TransformerNet
    from styleengine.engine.builtin_styles import builtin_bundle
    from styleengine.export.build import build_bundle

    shipped = builtin_bundle(style)
    ck = load_checkpoint(shipped.checkpoint)
    if not getattr(ck.arch, part):
        sys.exit(f"error: the {style} built-in has no {PARTS[part]} to compare against")
    plain = TransformerNet(dataclasses.replace(ck.arch, **{part: type(getattr(ck.arch, part))()}))
    plain.load_state_dict({k: v.float() for k, v in ck.state_dict.items() if k in plain.state_dict()})
    pt = save_model(tmp / f"{style}_plain.pt", plain, style=ck.style, train_config=ck.train_config,
                    loss_net=ck.loss_net, half=True)
    build_bundle(pt, tmp / f"{style}_plain.engine", tensorrt="off")
    return {"with": shipped, "without": load_bundle(tmp / f"{style}_plain.engine")}


def callables(bundle) -> dict[str, object]:
    import onnxruntime as ort
    import openvino as ov
    import torch

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.engine.stylizer import Stylizer

    model = load_checkpoint(bundle.checkpoint).build_model()

    def eager(b):
        with torch.inference_mode():
            x = torch.from_numpy(b).permute(0, 3, 1, 2).float()
            return model(x).clamp(0, 255).round().byte().permute(0, 2, 3, 1).contiguous().numpy()

    fp32 = str(bundle.onnx("fp32"))
    sess = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"])
    req = ov.Core().compile_model(fp32, "CPU").create_infer_request()

    def raw_ov(b):
        req.infer({0: b})
        return np.array(req.get_output_tensor(0).data, copy=True)

    auto = Stylizer(bundle, "auto")

    def engine_auto(b):
        out = auto.stylize_batch(b)
        engine_auto.chose = auto.backend_name
        return out

    return {"eager torch fp32": eager, "raw ORT fp32": lambda b: sess.run(None, {"input": b})[0],
            "raw OpenVINO default": raw_ov, "engine auto": engine_auto}


def measure(pairs: dict, frames: list[np.ndarray], rounds: int, seconds: float) -> dict[str, dict]:
    """pairs: kind -> (callable with the part, callable without). Calls alternate with/without one frame at a
    time, so the machine's drift (a shared VM: +-20% between rounds) hits both alike; the ratio reported is the
    median of the per-call pairs' ratios."""
    out = {}
    for kind, (with_part, without) in pairs.items():
        a = [with_part(f) for f in frames]  # warm-up (auto measures its choice here), and the outputs to compare
        b = [without(f) for f in frames]
        t_with, t_without, i = [], [], 0
        end = time.perf_counter() + rounds * seconds
        while time.perf_counter() < end or len(t_with) < 5:
            f = frames[i % len(frames)]
            for fn, times in ((with_part, t_with), (without, t_without)) if i % 2 == 0 else \
                    ((without, t_without), (with_part, t_with)):
                t = time.perf_counter()
                fn(f)
                times.append(time.perf_counter() - t)
            i += 1
        diff = [np.abs(x.astype(int) - y.astype(int)) for x, y in zip(a, b)]
        out[kind] = {"ms_median_with": round(1000 * statistics.median(t_with), 2),
                     "ms_median_without": round(1000 * statistics.median(t_without), 2),
                     "calls": len(t_with),
                     "x_without": round(statistics.median(x / y for x, y in zip(t_with, t_without)), 3),
                     "x_without_iqr": [round(q, 3) for q in np.percentile(
                         [x / y for x, y in zip(t_with, t_without)], [25, 75])],
                     "output_difference_levels": {"mean": round(float(np.mean([d.mean() for d in diff])), 3),
                                                  "max": int(max(d.max() for d in diff))},
                     "border_band": {"with": _band(a), "without": _band(b), "input": _band(frames)}}
        if hasattr(with_part, "chose"):
            out[kind]["chose"] = [with_part.chose, without.chose]
    return out


def _band(images) -> float:
    """The mean border band (engine.quality.border_band) of a batch list's frames."""
    from styleengine.engine.quality import border_band

    return round(float(np.mean([border_band(f) for b in images for f in np.asarray(b).reshape(-1, *b.shape[-3:])])), 2)


def markdown(doc: dict) -> str:
    env = doc["environment"]
    part = PARTS[doc["part"]]
    lines = [f"# {part.capitalize()} cost ({doc['style']} built-in, `fast` preset)", "",
             f"CPU: {env['cpu']['name']} ({env['cpu']['usable_cores']} cores; ISA {' '.join(env['cpu']['isa'])}); "
             f"load average {doc['load_average']}; medians. With and without the {part} alternate call by call "
             "within a row; the rows run one after another, so compare within a row, not across rows "
             "(benchmarks/cpu_runtimes.py compares the runtimes).", ""]
    for size, rows in doc["results"].items():
        lines += [f"## {size}", "", f"| row | ms with {part} | ms without | with / without (median of pairs; IQR) "
                  "| calls | output difference (levels) | border band with / without (input) |",
                  "|---|---|---|---|---|---|---|"]
        for k, v in rows.items():
            d, band = v["output_difference_levels"], v["border_band"]
            k = f"{k} ({' / '.join(v['chose'])})" if "chose" in v else k
            lines.append(f"| {k} | {v['ms_median_with']} | {v['ms_median_without']} | {v['x_without']} "
                         f"({v['x_without_iqr'][0]}-{v['x_without_iqr'][1]}) | {v['calls']} | "
                         f"mean {d['mean']}, max {d['max']} | {band['with']} / {band['without']} ({band['input']}) |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = timing_options(__doc__, None, "tiny size, one round (checks the script)")
    ap.add_argument("--part", choices=sorted(PARTS), default="phase_bias")
    ap.add_argument("--style", default="great_wave", help="a built-in (great_wave has both parts; starry_night's "
                                                            "phase bias is zero)")
    args = ap.parse_args()
    out = args.out or RESULTS / f"{args.part}_cost"
    from styleengine.cli import console
    from styleengine.engine.environment import environment

    console.configure(quiet=True)
    sizes = {"96x64": (96, 64)} if args.smoke else {**SIZES, "1280x720": (1280, 720)}
    rounds = 1 if args.smoke else args.rounds
    results = {}
    with tempfile.TemporaryDirectory() as d:
        os.environ["STYLEENGINE_CACHE"] = d
        pair = bundles(args.style, args.part, Path(d))
        for label, size in sizes.items():
            with_part, without = (callables(pair[v]) for v in VARIANTS)
            pairs = {k: (with_part[k], without[k]) for k in with_part}
            results[label] = measure(pairs, real_frames(size, args.frames), rounds, 0.2 if args.smoke else args.seconds)
            print(f"{label}: " + ", ".join(f"{k} x{v['x_without']}" for k, v in results[label].items()),
                  file=sys.stderr)
    doc = {"part": args.part, "style": args.style, "results": results, "rounds": rounds, "frames": clip_path().name,
           "load_average": [round(x, 2) for x in os.getloadavg()], "environment": environment()}
    write_results(doc, out, markdown(doc))

if __name__ == "__main__":
    main()
