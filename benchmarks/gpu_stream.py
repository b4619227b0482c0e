"""Streaming on the GPU: 720p file -> file frames/s with the torch backend as shipped, beside its ceilings.

    python benchmarks/gpu_stream.py [--clip 720p.mp4] --out stream.json [--budget S] [--smoke]

Run by benchmarks/gpu.sh (step stream-720p), through its import shim. Needs PyAV (the device image has none:
gpu.sh installs the carried wheel). The clip: --clip (gpu.sh passes .carry/big_buck_bunny_720p.mp4 when it was
carried), else a synthetic 10 s 720p clip with moving content and AAC audio made here with libx264.

On the same clip and the same loaded backend (johnson, random weights, FP16, channels_last, CUDA graphs):
  1. pure inference: backend.infer on decoded frames in memory, batch 1 and the pipeline's batch (the ceiling);
  2. I/O ceiling: stylize_video with an identity stylizer (decode + convert + encode + mux only);
  3. the pipeline: stylize_video(clip, out, Stylizer) at the Stylizer's own batch, then at batch 1;
  4. naive: decode -> stylize -> encode, one frame at a time in one thread.
The pipeline's clock starts after stylizer.prepare() (CUDA graphs captured first); `prepare_s` reports that
time apart and `fps_incl_setup` the whole call. Results are saved after each measurement (a time-out keeps them).
--smoke: CPU, fast preset, the bundled 480x270 sample downscaled (checks the code paths; not a measurement).
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


def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 30) -> None:
    """Moving gradients + texture (real work for the encoder) and a sine AAC track."""
    import av

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tex = np.random.default_rng(0).integers(0, 40, (height, width), dtype=np.uint8)
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


class IdentityStylizer:
    """What stylize_video needs from a Stylizer, returning its input: the pipeline's I/O ceiling."""

    def __init__(self, like):
        self.like = like
        self.batch_size = like.batch_size

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        return self.like.target_size(width, height)

    def prepare(self, width: int, height: int, batch: int | None = None, sample: np.ndarray | None = None) -> None:
        pass

    def stylize_batch(self, frames: np.ndarray) -> np.ndarray:
        return frames.copy()

    def describe(self) -> dict:
        return {"backend": "identity (I/O ceiling)"}


def decode(clip: Path, stylizer, limit: int) -> list[np.ndarray]:
    from styleengine.engine.video.reader import VideoReader

    r = VideoReader(str(clip))
    r.set_size(*stylizer.target_size(r.width, r.height))
    frames = []
    for sf in r.frames():
        frames.append(sf.rgb)
        if len(frames) == limit:
            break
    r.close()
    return frames


def pure_fps(be, frames: list[np.ndarray], batch: int, reps: int) -> dict:
    """backend.infer on frames already in memory (after prepare + warm-up): the ceiling of any video path."""
    be.prepare([(batch, *frames[0].shape)])
    for i in range(3):
        be.infer(np.stack([frames[(i * batch + k) % len(frames)] for k in range(batch)]))
    times = []
    for r in range(reps):
        arr = np.stack([frames[(r * batch + k) % len(frames)] for k in range(batch)])
        t0 = time.perf_counter()
        be.infer(arr)
        times.append((time.perf_counter() - t0) / batch)
    med = statistics.median(times)
    return {"batch": batch, "calls": reps, "median_ms_per_frame": round(med * 1000, 3), "fps": round(1 / med, 1),
            "last_timings": be.last_timings()}


def pipeline(stylizer, clip: Path, out: Path, batch: int | None) -> dict:
    from styleengine.engine.video.pipeline import stylize_video

    t0 = time.perf_counter()
    res = stylize_video(clip, out, stylizer, batch_size=batch, overwrite=True, stats=True)
    total = time.perf_counter() - t0
    stages = res.stats.get("stages", {})
    return {"batch": batch or stylizer.batch_size, "frames": res.frames, "fps": res.fps,
            "wall_seconds": res.wall_seconds, "fps_incl_setup": round(res.frames / total, 2),
            "prepare_s": round(total - res.wall_seconds, 3), "encoder": res.encoder.get("codec"),
            "stage_ms_per_frame": {k: v.get("ms_per_item") for k, v in stages.items()},
            "busy_fraction": {k: v.get("busy_fraction") for k, v in stages.items()},
            "queues": res.stats.get("queues"), "latency_ms": res.stats.get("latency_ms")}


def naive(stylizer, clip: Path, out: Path) -> dict:
    """The loop everyone writes first: decode a frame, stylize it, encode it; nothing overlaps."""
    from styleengine.engine.video.reader import VideoReader
    from styleengine.engine.video.writer import VideoWriter, WriterConfig

    t0 = time.perf_counter()
    r = VideoReader(str(clip))
    r.set_size(*stylizer.target_size(r.width, r.height))
    info = r.info
    w = None
    n = 0
    for sf in r.frames():
        y = stylizer.stylize_batch(sf.rgb[None])[0]
        if w is None:
            w = VideoWriter(str(out), y.shape[1], y.shape[0],
                            WriterConfig(time_base=info.time_base, rate=info.rate, colorspace=info.colorspace,
                                         color_primaries=info.color_primaries, color_trc=info.color_trc,
                                         audio_source=str(clip) if info.audio else None))
        w.write(y, sf.pts, sf.time_base, sf.duration)
        n += 1
    w.close()
    r.close()
    wall = time.perf_counter() - t0
    return {"frames": n, "fps": round(n / wall, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=None, help="a 720p clip (default: a synthetic one)")
    ap.add_argument("--preset", default="johnson", choices=["johnson", "fast"])
    ap.add_argument("--frames", type=int, default=300, help="length of the synthetic clip (30 fps)")
    ap.add_argument("--budget", type=float, default=90.0, help="seconds; later measurements are skipped past it")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--smoke", action="store_true", help="CPU dry run at tiny sizes (not a measurement)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    try:
        import av  # noqa: F401
    except ImportError:
        print("SKIP: PyAV is not installed (carry .whl/av-*.whl; see benchmarks/gpu.sh)")
        return 3
    import torch

    from styleengine.cli.console import configure
    from styleengine.engine.backend_torch import TorchBackend
    from styleengine.engine.bench.source import make_random_bundle
    from styleengine.engine.environment import environment
    from styleengine.engine.stylizer import Stylizer
    from styleengine.engine.video.writer import choose_codec, encoder_works

    configure(quiet=True)
    device, precision, max_size, preset = "cuda", "fp16", None, args.preset
    if args.smoke:
        device, precision, max_size, preset, args.frames = "cpu", "fp32", 128, "fast", 12
    elif not torch.cuda.is_available():
        print("error: no CUDA GPU visible to torch; this benchmark needs the device machine", file=sys.stderr)
        return 2
    report: dict = {"smoke": args.smoke, "preset": f"{preset} (random weights)", "device": device,
                    "precision": precision, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                    "nvenc": encoder_works("h264_nvenc"), "encoder_auto": choose_codec("auto", "x.mp4"),
                    "environment": environment(), "runs": []}

    def left() -> float:
        return args.budget - (time.perf_counter() - t_start)

    def save() -> None:
        report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        if args.clip is not None:
            clip, label = args.clip, args.clip.name
        else:
            w, h = (160, 90) if args.smoke else (1280, 720)
            clip, label = tmp / "synthetic.mp4", f"synthetic {w}x{h}, {args.frames} frames at 30 fps, AAC"
            t0 = time.perf_counter()
            make_clip(clip, w, h, args.frames)
            report["clip_seconds_to_make"] = round(time.perf_counter() - t0, 1)
        bundle = make_random_bundle(preset, tmp / "random.engine", need_onnx=False)
        be = TorchBackend(bundle, device=device, precision=precision)
        st = Stylizer.for_backend(be, max_size=max_size)
        run: dict = {"resolution": "720p" if not args.smoke else "smoke", "clip": label, "batch": st.batch_size}
        report["runs"].append(run)
        try:
            frames = decode(clip, st, 32)
            run["frame_size"] = list(frames[0].shape[:2])
            run["pure_inference"] = [pure_fps(be, frames, 1, 6 if args.smoke else 60)]
            if st.batch_size > 1:
                run["pure_inference"].append(pure_fps(be, frames, st.batch_size, 15))
            del frames
            save()
            print("pure inference", [p["fps"] for p in run["pure_inference"]], flush=True)
            run["io_ceiling"] = pipeline(IdentityStylizer(st), clip, tmp / "id.mp4", None)
            save()
            print("I/O ceiling", run["io_ceiling"]["fps"], flush=True)
            run["pipeline"] = pipeline(st, clip, tmp / "pipe.mp4", None)
            save()
            print(f"pipeline (batch {run['pipeline']['batch']})", run["pipeline"]["fps"], flush=True)
            for key, fn in (("pipeline_b1", lambda: pipeline(st, clip, tmp / "p1.mp4", 1)),
                            ("naive", lambda: naive(st, clip, tmp / "naive.mp4"))):
                if left() < 15:
                    run[key] = {"skipped": f"time budget ({left():.0f} s left of {args.budget:.0f})"}
                    continue
                run[key] = fn()
                save()
                print(key, run[key]["fps"], flush=True)
            best_pure = max(p["fps"] for p in run["pure_inference"])
            run["ratios"] = {"pipeline_vs_pure": round(run["pipeline"]["fps"] / best_pure, 3),
                             "pipeline_vs_io_ceiling": round(run["pipeline"]["fps"] / run["io_ceiling"]["fps"], 3)}
            if "fps" in run.get("naive", {}):
                run["ratios"]["pipeline_vs_naive"] = round(run["pipeline"]["fps"] / run["naive"]["fps"], 3)
        finally:
            st.close()
            save()
    print(json.dumps(report["runs"], indent=1, default=str)[:3000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
