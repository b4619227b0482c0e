"""Flicker of the built-in styles on real clips, with and without --temporal, and what --temporal costs.

    .venv/bin/python benchmarks/flicker.py [--clips /work/shared/data/video/*.mp4] [--styles starry_night,...]
        [--frames 48] [--max-size 640] [--backend auto] [--single-band] [--variant NAME=FIELD:VALUE,...]
    .venv/bin/python benchmarks/flicker.py --smoke [--output /tmp/flicker]   # seconds: bundled clip, 4 frames, 96 px

1. For each clip x style: styleengine.engine.evaluate.evaluate_flicker — warping error (Lai et al. 2018) of the
   input (floor), plain per-frame stylization and --temporal at several blend values, next to the style
   distance (Gram distance to the painting in efficientnet-lite0). Goal: warping error <= 0.5x
   per-frame while the style distance grows <= 10%. `--single-band` adds each blend in both bands (the
   stabilizer before its coarse band was smoothed harder); `--variant` adds stabilizers of other settings.
2. The stabilizer's own cost per frame (analyze = flow on the input side, apply = warp + blend) at each clip's
   native resolution, median of the frames; and the end-to-end FPS of `stylize_video` with and without
   --temporal on the bundled 2-second sample clip, run back to back on the same backend.

Writes benchmarks/results/flicker.json and flicker.md (with the environment block); `--output STEM` writes
STEM.json/.md instead. `--smoke` proves the script runs (the bundled clip, one style, tiny sizes) and writes to
--output or a temporary folder, never to results/.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from styleengine.core.fsutil import atomic_path
from styleengine.engine.builtin_styles import sample_path
from styleengine.engine.environment import environment
from styleengine.engine.evaluate import DEFAULT_BLENDS, evaluate_flicker, fallback_line, read_frames
from styleengine.engine.temporal import TemporalConfig, TemporalStabilizer

RESULTS = Path(__file__).parent / "results"
SAMPLE_CLIP = sample_path("clip")


def stabilizer_cost(clip: str, frames: int, single_band: bool = False) -> dict:
    """Median ms per frame of TemporalStabilizer.analyze and .apply at the clip's native size (the default
    stabilizer, or with `single_band` its blend in both bands)."""
    from styleengine.engine.video.filters import FrameMeta

    fr, _ = read_frames(clip, frames, None)
    stab = TemporalStabilizer(TemporalConfig(low_blend=TemporalConfig().blend) if single_band else None)
    ta, tp, ca, cp = [], [], [], []
    for i, f in enumerate(fr):
        t, c = time.perf_counter(), time.thread_time()
        ctx = stab.analyze(f, None)
        ta.append(time.perf_counter() - t)
        ca.append(time.thread_time() - c)
        s = np.ascontiguousarray(f[:, ::-1])  # any same-size "stylized" frame: cost does not depend on content
        t, c = time.perf_counter(), time.thread_time()
        stab.apply(f, s, FrameMeta(i, 0.0, 0, ctx))
        tp.append(time.perf_counter() - t)
        cp.append(time.thread_time() - c)
    ms = lambda xs: round(1000 * statistics.median(xs[1:]), 2)  # noqa: E731
    # CPU time of the calling thread (OpenCV may use more threads; set to 1 below) is what the work costs;
    # wall time on this shared machine mostly measures the other users.
    return {"clip": Path(clip).name, "stabilizer": "one band" if single_band else "default",
            "size": [fr[0].shape[1], fr[0].shape[0]], "frames": len(fr),
            "analyze_ms": ms(ta), "apply_ms": ms(tp), "analyze_cpu_ms": ms(ca), "apply_cpu_ms": ms(cp),
            "total_cpu_ms": round(ms(ca) + ms(cp), 2), "max_fps_one_core": round(1000 / (ms(ca) + ms(cp)), 1)}


def pipeline_fps(style: str, backend: str, runs: int, precision: str | None = None,
                 max_size: int | None = None) -> dict:
    """stylize_video on the sample clip (native size unless max_size), temporal off/on alternated `runs` times;
    medians."""
    from styleengine.engine.stylizer import Stylizer
    from styleengine.engine.video.pipeline import stylize_video

    res = {"off": [], "on": []}
    frames = None
    with Stylizer(style, backend, precision=precision, max_size=max_size) as st, \
            tempfile.TemporaryDirectory() as tmp:
        d = st.describe()
        label = f"{d.get('backend')} {d.get('precision') or ''}".strip()
        for r in range(runs):
            for mode in ("off", "on"):
                out = Path(tmp) / f"{mode}{r}.mp4"
                t = time.perf_counter()
                vr = stylize_video(SAMPLE_CLIP, out, st, temporal=mode == "on", audio=False)
                res[mode].append(time.perf_counter() - t)
                frames = vr.frames
    off, on = statistics.median(res["off"]), statistics.median(res["on"])
    return {"clip": SAMPLE_CLIP.name, "style": style, "backend": label, "max_size": max_size,
            "frames": frames, "runs": runs,
            "fps_off": round(frames / off, 2), "fps_on": round(frames / on, 2),
            "fps_ratio_on_off": round(off / on, 3)}


def markdown(doc: dict) -> str:
    lines = ["# Flicker: per-frame stylization vs --temporal", "",
             f"Metric: {doc['metric']}. Style distance: {doc['style_metric']}.",
             f"Frames: first {doc['frames']} of each clip, downscaled to a long side of {doc['max_size']} px.",
             "Goal: warp error <= 0.5x per-frame with style distance +10% at most.", ""]
    for rep in doc["reports"]:
        lines += [f"## {Path(rep['video']).name} — {rep['style']} ({rep['size'][0]}x{rep['size'][1]}, "
                  f"{rep['frames']} frames, {rep['backend']})", "",
                  "| variant | warp error | x per-frame | style distance | style change |", "|---|---|---|---|---|"]
        for v in rep["variants"]:
            f = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
            lines.append(f"| {v['variant']} | {f(v['warp_error'], '.6f')} | {f(v['ratio_to_per_frame'], '.3f')} | "
                         f"{f(v['style_distance'], '.4f')} | {f(v['style_change'], '+.1%')} |")
        lines.append("")
        where = [f"- {v['variant']}: {line}" for v in rep["variants"] if (line := fallback_line(v))]
        lines += where + ([""] if where else [])
    lines += ["## Cost of --temporal (one thread; CPU ms per frame, wall ms in brackets)", "",
              "| clip | stabilizer | size | analyze (flow) | apply (warp + blend) | total CPU ms | fps on one core |",
              "|---|---|---|---|---|---|---|"]
    for c in doc["stabilizer_cost"]:
        lines.append(f"| {c['clip']} | {c.get('stabilizer', 'default')} | {c['size'][0]}x{c['size'][1]} | "
                     f"{c['analyze_cpu_ms']} ({c['analyze_ms']}) | "
                     f"{c['apply_cpu_ms']} ({c['apply_ms']}) | {c['total_cpu_ms']} | {c['max_fps_one_core']} |")
    if doc.get("pipeline"):
        p = doc["pipeline"]
        lines += ["", f"End to end (`stylize_video`, {p['clip']}, {p['style']}, {p['backend']}, median of "
                      f"{p['runs']}): {p['fps_off']} fps without, {p['fps_on']} fps with --temporal "
                      f"({p['fps_ratio_on_off']:.2f}x)."]
    env = doc["environment"]
    lines += ["", f"Environment: {env['cpu']['name']} ({env['cpu']['usable_cores']} cores, shared), "
                  f"GPUs: {', '.join(g['name'] for g in env['gpus']) or 'none'}; python {env['python']}."]
    return "\n".join(lines) + "\n"


def parse_variant(spec: str) -> tuple[str, TemporalConfig]:
    """"NAME=FIELD:VALUE,FIELD:VALUE" -> (NAME, TemporalConfig with those fields; the rest default)."""
    name, _, fields = spec.rpartition("=")  # the name may hold "=" (b=0.5 ...), the fields do not
    if not name or not fields:
        sys.exit(f"--variant {spec!r}: expected NAME=FIELD:VALUE[,FIELD:VALUE]")
    kw = {}
    for item in fields.split(","):
        key, _, value = item.partition(":")
        if key not in TemporalConfig.__dataclass_fields__:
            sys.exit(f"--variant {spec!r}: {key!r} is not a TemporalConfig field")
        kind = type(getattr(TemporalConfig(), key))
        kw[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return name, TemporalConfig(**kw)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="*", default=sorted(glob.glob("/work/shared/data/video/*.mp4")))
    ap.add_argument("--styles", default="starry_night,great_wave")
    ap.add_argument("--extra", nargs="*", default=[], help="more styles (checkpoints) to measure, e.g. an A/B pair")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--max-size", type=int, default=640)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--precision", default="fp32", help="fp32: the models' own flicker, not INT8 rounding noise")
    ap.add_argument("--fps-runs", type=int, default=1)
    ap.add_argument("--blends", default=",".join(str(b) for b in DEFAULT_BLENDS))
    ap.add_argument("--single-band", action="store_true",
                    help="also measure each blend in both bands (the stabilizer before its coarse band was smoothed "
                         "harder), for comparison")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=FIELD:VALUE[,FIELD:VALUE]",
                    help="also measure a stabilizer with other TemporalConfig settings, e.g. sigma1=low_sigma:1; "
                         "repeatable")
    ap.add_argument("--output", "--out", default=None, help=f"output stem (default {RESULTS / 'flicker'})")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long run: bundled clip, starry_night, 4 frames at 96 px, one blend; writes to "
                         "--output or a temporary folder")
    args = ap.parse_args(argv)
    stab_frames, pipe_max_size = 24, None
    if args.smoke:
        args.clips, args.styles, args.extra = [str(SAMPLE_CLIP)], "starry_night", []
        args.frames, args.max_size, args.blends, args.fps_runs = 4, 96, "0.5", 1
        stab_frames, pipe_max_size = 3, 96
    if args.output is None:
        args.output = (str(Path(tempfile.mkdtemp(prefix="flicker_smoke_")) / "flicker") if args.smoke
                       else str(RESULTS / "flicker"))
    blends = tuple(float(b) for b in args.blends.split(","))
    configs = dict(parse_variant(v) for v in args.variant)
    reports = []
    for clip in args.clips:
        for style in args.styles.split(",") + list(args.extra):
            rep = evaluate_flicker(clip, style, frames=args.frames, backend=args.backend, precision=args.precision,
                                   blends=blends, max_size=args.max_size, single_band=args.single_band,
                                   configs=configs)
            print(rep.table(), file=sys.stderr, flush=True)
            reports.append(rep.to_dict())
    import cv2

    cv2.setNumThreads(1)  # so thread CPU time is the whole cost of the stabilizer
    costs = [stabilizer_cost(c, stab_frames, one) for c in args.clips for one in (False, True)[:1 + args.single_band]]
    pipe = (pipeline_fps(args.styles.split(",")[0], args.backend, args.fps_runs, args.precision, pipe_max_size)
            if args.fps_runs else None)
    doc = {"benchmark": "flicker", "frames": args.frames, "max_size": args.max_size,
           "metric": reports[0]["metric"] if reports else None,
           "style_metric": reports[0]["style_metric"] if reports else None,
           "stabilizer_default": TemporalConfig().to_dict(),
           "variant_configs": {f"temporal {k}": c.to_dict() for k, c in configs.items()},
           "reports": reports, "stabilizer_cost": costs, "pipeline": pipe, "environment": environment()}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown(doc))
    print(markdown(doc))
    print(f"wrote {out.with_suffix('.json')} and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
