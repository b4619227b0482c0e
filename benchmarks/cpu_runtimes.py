"""CPU speed and fidelity, side by side in one run: what a user could call instead vs what styleengine runs.

Rows, each on the same real video frames (cars_432p from ../shared/data, else the bundled clip), per model and
size (both presets; 640x360 and 768x432):

    eager torch fp32        the transformation network called directly (the baseline of every ratio)
    raw ORT fp32            onnxruntime.InferenceSession on our model_fp32.onnx with default settings
    raw OpenVINO default    openvino compile_model on our model_fp32.onnx with default settings
    engine <backend> <prec> styleengine's backends through the Backend contract
    engine auto             Stylizer(backend="auto"): the measured choice (its one-time measurement is timed
                            apart, as "auto first use")

Rows are interleaved round-robin and summarized by medians (a shared machine drifts); every row's output is
compared with eager torch (PSNR on the frames; the fidelity rule is >= 40 dB). Then cars_432p file -> file at its
full 768x432 with the `fast` built-in through `styleengine stylize` (start-up included) next to the pure
inference FPS of the backend auto chose. Writes benchmarks/results/cpu_runtimes.json and .md with the
environment block (CPU model, ISA flags, versions, load average).

    .venv/bin/python benchmarks/cpu_runtimes.py [--rounds 5] [--seconds 1.5] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARED_CLIP = ROOT.parent / "shared" / "data" / "video" / "cars_432p.mp4"
SIZES = {"640x360": (640, 360), "768x432": (768, 432)}


def clip_path() -> Path:
    from styleengine.engine.builtin_styles import sample_path

    return SHARED_CLIP if SHARED_CLIP.is_file() else sample_path("clip")


def real_frames(size: tuple[int, int], n: int) -> list[np.ndarray]:
    """n frames spread over the clip, resized to (W, H): (1, H, W, 3) uint8 each."""
    import av
    from PIL import Image

    with av.open(str(clip_path())) as c:
        frames = [f.to_image().convert("RGB") for f in c.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [np.ascontiguousarray(np.asarray(frames[i].resize(size, Image.BILINEAR))[None]) for i in picks]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else round(10 * np.log10(255.0 ** 2 / mse), 2)


def models(tmp: Path, smoke: bool) -> dict[str, tuple]:
    """name -> (bundle, weights description): the fast built-in, and the johnson preset."""
    from styleengine.engine.bench.source import make_random_bundle
    from styleengine.engine.builtin_styles import builtin_bundle

    out = {"fast (starry_night built-in)": (builtin_bundle("starry_night"), "trained")}
    if not smoke:
        out["johnson (random weights)"] = (make_random_bundle("johnson", tmp / "johnson.engine"), "random, seed 0")
    return out


def row_callables(bundle, cache: Path) -> dict[str, object]:
    """Row name -> a callable batch -> output (plus .close where needed). Unavailable rows -> reason string."""
    import torch

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.engine.backend import create_backend, get_backend
    from styleengine.engine.backend_openvino import best_precision
    from styleengine.engine.stylizer import Stylizer

    rows: dict[str, object] = {}
    model = load_checkpoint(bundle.checkpoint).build_model()

    def eager(batch):
        with torch.inference_mode():
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
            return model(x).clamp(0, 255).round().byte().permute(0, 2, 3, 1).contiguous().numpy()

    rows["eager torch fp32"] = eager
    fp32 = str(bundle.onnx("fp32"))
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"])
        rows["raw ORT fp32 (defaults)"] = lambda b: sess.run(None, {"input": b})[0]
    except ImportError as exc:
        rows["raw ORT fp32 (defaults)"] = f"unavailable: {exc}"
    try:
        import openvino as ov

        compiled = ov.Core().compile_model(fp32, "CPU")
        req = compiled.create_infer_request()
        hint = str(compiled.get_property("INFERENCE_PRECISION_HINT"))

        def raw_ov(b):
            req.infer({0: b})
            return np.array(req.get_output_tensor(0).data, copy=True)

        rows[f"raw OpenVINO default ({hint})"] = raw_ov
    except ImportError as exc:
        rows["raw OpenVINO default"] = f"unavailable: {exc}"
    configs = [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("torch", "fp32")]
    if best_precision() != "fp32":
        configs.insert(3, ("openvino", best_precision()))
    for name, precision in configs:
        if not get_backend(name).available()[0]:
            rows[f"engine {name} {precision}"] = f"unavailable: {get_backend(name).available()[1]}"
            continue
        be = create_backend(name, bundle, device="cpu", precision=precision)
        be.load()
        rows[f"engine {name} {precision}"] = be
    os.environ["STYLEENGINE_CACHE"] = str(cache)
    rows["engine auto"] = Stylizer(bundle, "auto")
    return rows


def call(row, batch):
    if hasattr(row, "stylize_batch"):
        return row.stylize_batch(batch)
    return row.infer(batch) if hasattr(row, "infer") else row(batch)


def measure(rows: dict, frames: list[np.ndarray], rounds: int, seconds: float) -> dict[str, dict]:
    live = {k: v for k, v in rows.items() if not isinstance(v, str)}
    samples: dict[str, list[float]] = {k: [] for k in live}
    outputs = {}
    t0 = time.perf_counter()
    first = live["engine auto"]
    outputs["engine auto"] = [call(first, f) for f in frames]  # auto's one-time measurement happens here
    auto_first = time.perf_counter() - t0
    for k, row in live.items():
        outputs[k] = [call(row, f) for f in frames]  # warm-up, and the fidelity sample
    for _ in range(rounds):
        for k, row in live.items():
            times, i = [], 0
            end = time.perf_counter() + seconds
            while time.perf_counter() < end or len(times) < 3:
                f = frames[i % len(frames)]
                t = time.perf_counter()
                call(row, f)
                times.append(time.perf_counter() - t)
                i += 1
            samples[k].append(statistics.median(times))
    ref = outputs["eager torch fp32"]
    out = {}
    for k, row in rows.items():
        if isinstance(row, str):
            out[k] = {"status": row}
            continue
        ms = 1000 * statistics.median(samples[k])
        out[k] = {"ms_median": round(ms, 2), "fps": round(1000 / ms, 2),
                  "ms_per_round": [round(1000 * s, 2) for s in samples[k]],
                  "psnr_vs_eager_torch_db": min(psnr(a, b) for a, b in zip(outputs[k], ref))}
    out["engine auto"]["first_use_seconds"] = round(auto_first, 2)
    out["engine auto"]["chose"] = rows["engine auto"].backend_name
    base = out["eager torch fp32"]["ms_median"]
    raw = [v["ms_median"] for k, v in out.items() if k.startswith("raw") and "ms_median" in v]
    for v in out.values():
        if "ms_median" in v:
            v["x_eager_torch"] = round(base / v["ms_median"], 2)
            if raw:
                v["x_fastest_raw_runtime"] = round(min(raw) / v["ms_median"], 3)
    return out


def file_to_file(smoke: bool) -> dict:
    """`styleengine stylize cars_432p.mp4 -o out.mp4 --style starry_night` at full size, start-up included."""
    import subprocess

    clip = clip_path()
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.mp4"
        args = [sys.executable, "-m", "styleengine", "stylize", str(clip), "-o", str(out), "--style", "starry_night",
                "--json"] + (["--max-size", "96"] if smoke else [])
        t = time.perf_counter()
        res = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "STYLEENGINE_CACHE": d})
        wall = time.perf_counter() - t
        if res.returncode != 0:
            return {"status": f"failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"}
        (row,) = json.loads(res.stdout)
        frames = row["extra"]["frames"]
        return {"clip": clip.name, "frames": frames, "size": f"{row['width']}x{row['height']}", "backend": row["backend"],
                "wall_seconds_with_startup": round(wall, 2), "fps_with_startup": round(frames / wall, 2),
                "fps_pipeline": row["extra"]["fps"], "stderr_tail": res.stderr.strip().splitlines()[-3:]}


def timing_options(doc: str, out: Path, smoke_help: str) -> argparse.ArgumentParser:
    """The options every side-by-side CPU timing script takes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5, help="time per row per round")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--smoke", action="store_true", help=smoke_help)
    ap.add_argument("--out", type=Path, default=out)
    return ap


def write_results(doc: dict, out: Path, text: str) -> None:
    """STEM.json and STEM.md, and the markdown on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    out.with_suffix(".md").write_text(text)
    print(text)


def markdown(doc: dict) -> str:
    env = doc["environment"]
    lines = ["# CPU runtimes side by side", "",
             f"CPU: {env['cpu']['name']} ({env['cpu']['usable_cores']} cores; ISA {' '.join(env['cpu']['isa'])}); "
             f"load average {doc['load_average']}; {doc['rounds']} interleaved rounds; medians.", ""]
    for model, sizes in doc["results"].items():
        for size, rows in sizes.items():
            lines += [f"## {model}, {size}", "", "| row | ms (median) | fps | x eager torch | x fastest raw runtime "
                      "| PSNR vs eager (dB) |", "|---|---|---|---|---|---|"]
            for k, v in rows.items():
                if "ms_median" not in v:
                    lines.append(f"| {k} | {v['status']} | | | | |")
                    continue
                extra = f" (chose {v['chose']}; first use {v['first_use_seconds']} s)" if "chose" in v else ""
                lines.append(f"| {k}{extra} | {v['ms_median']} | {v['fps']} | {v['x_eager_torch']} | "
                             f"{v.get('x_fastest_raw_runtime', '-')} | {v['psnr_vs_eager_torch_db']} |")
            lines.append("")
    f2f = doc.get("file_to_file") or {}
    if f2f:
        lines += ["## File to file", "", "```", json.dumps(f2f, indent=1), "```", ""]
    return "\n".join(lines)


def main() -> None:
    ap = timing_options(__doc__, RESULTS / "cpu_runtimes", "tiny sizes, one model, one round (checks the script)")
    args = ap.parse_args()
    from styleengine.cli import console
    from styleengine.engine.environment import environment

    console.configure(quiet=True)
    sizes = {"96x64": (96, 64)} if args.smoke else SIZES
    rounds = 1 if args.smoke else args.rounds
    results: dict = {}
    with tempfile.TemporaryDirectory() as d:
        for name, (bundle, weights) in models(Path(d), args.smoke).items():
            results[name] = {}
            for label, size in sizes.items():
                rows = row_callables(bundle, Path(d) / f"cache-{len(results)}-{label}")
                results[name][label] = measure(rows, real_frames(size, args.frames), rounds,
                                               0.2 if args.smoke else args.seconds)
                for row in rows.values():
                    if hasattr(row, "close"):
                        row.close()
                print(f"{name} {label}: " + ", ".join(f"{k} {v.get('ms_median', v.get('status'))}"
                                                      for k, v in results[name][label].items()), file=sys.stderr)
    doc = {"results": results, "file_to_file": file_to_file(args.smoke), "rounds": rounds,
           "load_average": [round(x, 2) for x in os.getloadavg()], "environment": environment(),
           "frames": str(clip_path().name)}
    write_results(doc, args.out, markdown(doc))


if __name__ == "__main__":
    main()
