"""GPU streaming benchmark for a device session: 720p and 1080p file -> file FPS with the torch-CUDA backend.

NOT RUN YET: written in a session without a GPU. Budget: finishes in < 8 minutes on one H100 (a time guard skips
remaining steps past --budget seconds).

The device image has torch, numpy, rich, typer and pillow, but not PyAV, and styleengine is not installed there.
PyAV travels as a wheel (Python 3.12 there); this script finds the repo's packages by itself. Here, once:

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0

Device command (carry [".whl"]):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
      && PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu_stream.py --out $OUT/gpu_stream.json

Per resolution (synthetic 8 s clip with moving content + AAC audio, made here with libx264 on the CPU cores):
  - pure inference FPS of the torch-CUDA backend (FP16, CUDA graphs) at batch 1 and 4 on in-memory frames;
  - I/O ceiling: the same pipeline with an identity "backend" (decode + convert + encode + mux only);
  - naive sequential decode -> infer -> encode loop;
  - the pipeline (stylize_video) at batch 4 and batch 1, with per-stage times and queue waits.
H100s have no NVENC: the encoder probe falls back to libx264 (reported), so 1080p end-to-end FPS is bounded by
libx264 on the CPU cores; the I/O-ceiling line shows by how much.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "gpu_stream.json"


def bootstrap() -> None:
    """Make `styleengine.*` importable from a plain checkout (package-dir mapping of pyproject.toml)."""
    try:
        import styleengine.engine.video  # noqa: F401
        return
    except ImportError:
        pass
    shim = Path(tempfile.mkdtemp(prefix="styleengine-shim-"))
    pkg = shim / "styleengine"
    pkg.mkdir()
    for item in (REPO / "styleengine").iterdir():
        (pkg / item.name).symlink_to(item)
    for stage in ("train", "export", "engine"):
        (pkg / stage).symlink_to(REPO / stage)
    sys.path.insert(0, str(shim))
    for name in [m for m in sys.modules if m == "styleengine" or m.startswith("styleengine.")]:
        del sys.modules[name]


def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 30) -> None:
    """Moving gradients + texture (realistic work for the encoder) and a sine AAC track."""
    import av

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 40, (height, width), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "20"})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(frames):
            img = np.empty((height, width, 3), np.uint8)
            img[..., 0] = ((xx + 4 * i) % 256).astype(np.uint8)
            img[..., 1] = ((yy + 2 * i) % 256).astype(np.uint8)
            img[..., 2] = np.roll(tex, i * 3, axis=1) + 100
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p", dst_colorspace=1,
                                                                          dst_color_range=1)
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        n = int(frames / fps * 48000)
        for t in range(0, n, 1024):
            m = min(1024, n - t)
            x = (0.2 * np.sin(np.arange(t, t + m) * 2 * np.pi * 440 / 48000)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, t
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)


class Identity:
    """A 'backend' that returns its input: measures the pipeline's I/O ceiling (decode + encode + mux)."""

    name, device = "identity", "cpu"

    def infer(self, batch):
        return batch.copy()

    def describe(self):
        return {"backend": "identity (I/O ceiling)"}


def pure_fps(be, frames: list[np.ndarray], batch: int, reps: int) -> dict:
    arr = np.stack(frames[:batch])
    for _ in range(3):
        be.infer(arr)  # graph capture, cuDNN autotune
    times = []
    for r in range(reps):
        arr = np.stack([frames[(r * batch + k) % len(frames)] for k in range(batch)])
        t0 = time.perf_counter()
        be.infer(arr)
        times.append((time.perf_counter() - t0) / batch)
    med = statistics.median(times)
    return {"batch": batch, "median_ms_per_frame": round(med * 1000, 3), "fps": round(1 / med, 1)}


def naive(be, clip: Path, out: Path) -> dict:
    from styleengine.engine.video.reader import VideoReader
    from styleengine.engine.video.writer import VideoWriter, WriterConfig

    t0 = time.perf_counter()
    r = VideoReader(str(clip))
    info = r.info
    w = None
    n = 0
    for sf in r.frames():
        y = be.infer(sf.rgb[None])[0]
        if w is None:
            w = VideoWriter(str(out), y.shape[1], y.shape[0],
                            WriterConfig(time_base=info.time_base, rate=info.rate, colorspace=info.colorspace,
                                         color_primaries=info.color_primaries, color_trc=info.color_trc,
                                         audio_source=str(clip)))
        w.write(y, sf.pts, sf.time_base, sf.duration)
        n += 1
    w.close()
    r.close()
    wall = time.perf_counter() - t0
    return {"frames": n, "fps": round(n / wall, 2)}


def pipeline(be, clip: Path, out: Path, batch: int) -> dict:
    from styleengine.engine.video.pipeline import stylize_video

    res = stylize_video(clip, out, be, batch_size=batch, progress=False, verbose=False, overwrite=True)
    return {"batch": batch, "frames": res.frames, "fps": res.fps, "encoder": res.encoder["codec"],
            "stage_ms_per_frame": {k: v["ms_per_item"] for k, v in res.stats["stages"].items()},
            "busy_fraction": {k: v["busy_fraction"] for k, v in res.stats["stages"].items()},
            "queue_wait_s": {k: {"put": v["put_wait_s"], "get": v["get_wait_s"]}
                             for k, v in res.stats["queues"].items()},
            "latency_ms": res.stats["latency_ms"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="johnson", choices=["johnson", "fast"])
    ap.add_argument("--frames", type=int, default=240, help="clip length (30 fps)")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds; later steps are skipped past it")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--smoke", action="store_true",
                    help="CPU dry run at tiny sizes (checks this script's code paths where no GPU exists)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    bootstrap()

    import torch

    from styleengine.core.bundle import Bundle
    from styleengine.core.checkpoint import save_model
    from styleengine.core.network import PRESETS, TransformerNet
    from styleengine.engine.backend_torch import TorchBackend
    from styleengine.engine.environment import environment
    from styleengine.engine.video.writer import choose_codec, encoder_works

    device, precision = "cuda", "fp16"
    sizes = {"720p": (1280, 720), "1080p": (1920, 1080)}
    if args.smoke:
        device, precision, sizes, args.frames = "cpu", "fp32", {"72p": (128, 72), "90p": (160, 90)}, 12
    elif not torch.cuda.is_available():
        print("error: no CUDA GPU visible to torch; this benchmark needs the device machine", file=sys.stderr)
        sys.exit(2)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (--smoke on CPU: not a measurement)"
    report: dict = {"environment": environment(), "preset": args.preset, "gpu": gpu,
                    "nvenc": encoder_works("h264_nvenc"), "encoder_auto": choose_codec("auto"), "runs": []}
    print(f"GPU {report['gpu']}; NVENC {report['nvenc']}; encoder {report['encoder_auto']}", flush=True)

    def left() -> float:
        return args.budget - (time.perf_counter() - t_start)

    def save() -> None:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        torch.manual_seed(0)
        save_model(tmp / "model.pt", TransformerNet(PRESETS[args.preset]).eval(), style={"name": "random"},
                   loss_net="none (benchmark: random weights; speed does not depend on them)")
        be = TorchBackend(Bundle(tmp, {"preset": args.preset}), device=device, precision=precision).load()
        for name, (w, h) in sizes.items():
            if left() < 60:
                report["runs"].append({"resolution": name, "skipped": "time budget"})
                break
            run: dict = {"resolution": name, "size": [w, h]}
            clip = tmp / f"{name}.mp4"
            t0 = time.perf_counter()
            make_clip(clip, w, h, args.frames)
            run["clip_seconds_to_make"] = round(time.perf_counter() - t0, 1)
            from styleengine.engine.video.reader import VideoReader

            r = VideoReader(str(clip))
            frames = []
            for sf in r.frames():
                frames.append(sf.rgb)
                if len(frames) == 32:
                    break
            r.close()
            run["pure_inference"] = [pure_fps(be, frames, 1, 60), pure_fps(be, frames, 4, 15)]
            del frames
            print(name, "pure", run["pure_inference"], flush=True)
            run["io_ceiling"] = pipeline(Identity(), clip, tmp / "id.mp4", 4)
            print(name, "io ceiling", run["io_ceiling"]["fps"], flush=True)
            if left() > 45:
                run["pipeline_b4"] = pipeline(be, clip, tmp / "p4.mp4", 4)
                print(name, "pipeline b4", run["pipeline_b4"]["fps"], flush=True)
            if left() > 45:
                run["naive"] = naive(be, clip, tmp / "naive.mp4")
                print(name, "naive", run["naive"]["fps"], flush=True)
            if left() > 45:
                run["pipeline_b1"] = pipeline(be, clip, tmp / "p1.mp4", 1)
                print(name, "pipeline b1", run["pipeline_b1"]["fps"], flush=True)
            best_pure = max(p["fps"] for p in run["pure_inference"])
            if "pipeline_b4" in run:
                run["ratios"] = {"pipeline_b4_vs_pure": round(run["pipeline_b4"]["fps"] / best_pure, 3)}
                if "naive" in run:
                    run["ratios"]["pipeline_b4_vs_naive"] = round(run["pipeline_b4"]["fps"] / run["naive"]["fps"], 3)
            report["runs"].append(run)
            save()
        be.close()
    save()
    print(json.dumps(report["runs"], indent=2))


if __name__ == "__main__":
    main()
