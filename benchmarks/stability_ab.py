"""Does the trainer's stability regularizer pay off? Flicker and style distance of two checkpoints trained from the
same weights for the same steps, one with `stability_weight` and one without (the control).

    .venv/bin/python benchmarks/stability_ab.py CONTROL.pt STABILIZED.pt --painting starry_night [--out STEM]
    .venv/bin/python benchmarks/stability_ab.py --smoke [--out STEM]   # the starry_night built-in as both arms,
                                                                       # bundled clip, 4 frames at 96 px

The checkpoints run in torch FP32 on the first `--frames` frames of each shared clip (long side 640); per-frame
and --temporal (blend 0.5) rows, as in benchmarks/flicker.py. Writes benchmarks/results/stability_ab.json/.md
(or STEM.json/.md; --smoke writes to --out or a temporary folder, never to results/).
How the pair recorded there was made (benchmarks/train_builtins.py, fast preset, 128-px crops, batch 4, lr 5e-3):
both start from the same starry_night network and train 300 steps with the trainer's efficientnet-lite0
defaults; the stabilized one adds --stability-weight 10.
"""

from __future__ import annotations

import argparse
import glob
import json
import tempfile
from pathlib import Path

import numpy as np

from styleengine.core.fsutil import atomic_path
from styleengine.engine.builtin_styles import get_builtin, sample_path, style_image_path
from styleengine.engine.environment import environment
from styleengine.engine.evaluate import measure, read_frames
from styleengine.engine.quality import StyleDistance

RESULTS = Path(__file__).parent / "results"


def torch_stylizer(path: str):
    import torch

    from styleengine.core.checkpoint import load_checkpoint

    ck = load_checkpoint(path)
    model = ck.build_model()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = model(torch.from_numpy(batch).permute(0, 3, 1, 2).float()).clamp(0, 255).round().byte()
        return y.permute(0, 2, 3, 1).contiguous().numpy()

    return run, ck.train_config


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("control", nargs="?", help="checkpoint trained without the regularizer (.pt)")
    ap.add_argument("stabilized", nargs="?", help="checkpoint trained with it, from the same weights (.pt)")
    ap.add_argument("--painting", default="starry_night")
    ap.add_argument("--clips", nargs="*", default=sorted(glob.glob("/work/shared/data/video/*.mp4")))
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--max-size", type=int, default=640)
    ap.add_argument("--out", default=None, help=f"output stem (default {RESULTS / 'stability_ab'})")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long run proving the script works: the --painting built-in's model.pt as both "
                         "arms (unless given), the bundled clip, 4 frames at 96 px; writes to --out or a temporary "
                         "folder")
    args = ap.parse_args(argv)
    if args.smoke:
        builtin = get_builtin(args.painting)
        if builtin is None and not (args.control and args.stabilized):
            ap.error(f"--smoke: no built-in style {args.painting!r}; give CONTROL and STABILIZED")
        args.control = args.control or str(builtin.checkpoint)
        args.stabilized = args.stabilized or args.control
        args.clips, args.frames, args.max_size = [str(sample_path("clip"))], 4, 96
        args.out = args.out or str(Path(tempfile.mkdtemp(prefix="stability_ab_smoke_")) / "stability_ab")
    if not (args.control and args.stabilized):
        ap.error("CONTROL and STABILIZED checkpoints are required (or --smoke)")
    if not args.clips:
        ap.error("no clips: pass --clips (the default reads /work/shared/data/video/*.mp4)")
    sd = StyleDistance(style_image_path(args.painting))
    models = {"control": torch_stylizer(args.control), "stabilized": torch_stylizer(args.stabilized)}
    rows = []
    for clip in args.clips:
        frames, _ = read_frames(clip, args.frames, args.max_size)
        for arm, (run, cfg) in models.items():
            for r in measure(frames, run, blends=(0.5,), style_distance=sd.image):
                if r.name == "input":
                    continue
                rows.append({"clip": Path(clip).name, "arm": arm, "stability_weight": cfg.get("stability_weight"),
                             "steps": cfg.get("steps"), **r.to_dict()})
    # Relative to the control's per-frame row of the same clip.
    for row in rows:
        base = next(b for b in rows if b["clip"] == row["clip"] and b["arm"] == "control" and b["variant"] == "per-frame")
        row["warp_vs_control"] = round(row["warp_error"] / base["warp_error"], 3)
        row["style_vs_control"] = round(row["style_distance"] / base["style_distance"] - 1, 3)
    doc = {"benchmark": "stability_ab", "control": args.control, "stabilized": args.stabilized,
           "painting": args.painting, "frames": args.frames, "max_size": args.max_size, "rows": rows,
           "environment": environment()}
    lines = ["# Stability regularizer A/B (same init, same steps)", "",
             "| clip | arm | variant | warp error | x control per-frame | style distance | vs control |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['clip']} | {r['arm']} (w={r['stability_weight']}) | {r['variant']} | {r['warp_error']:.6f} | "
                     f"{r['warp_vs_control']:.2f} | {r['style_distance']:.4f} | {r['style_vs_control']:+.1%} |")
    out = Path(args.out) if args.out else RESULTS / "stability_ab"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out.with_suffix('.json')} and .md")


if __name__ == "__main__":
    main()
