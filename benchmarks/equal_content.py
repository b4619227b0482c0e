"""Style distance at equal content preservation: each style set, with `--strength`, to keep as much of each
gallery photo as an earlier model of it did, and its style distance there beside that model's.

    .venv/bin/python benchmarks/equal_content.py [--styles all | name,... | bundle-folder,...]
                                                 [--before benchmarks/results/gallery_before.json] [--out DIR]

A stronger model paints more of the photo away (a higher content distance), so its style distance alone does
not say whether it is better at the same content. `--strength s` (the output mixed with the photo) trades one
for the other, and any user can set it. Per gallery image, the strength at which the content distance equals
the earlier model's is found by bisection (content distance grows with the strength; 1 where the model keeps
more of the photo at full strength); the style distance is measured there. Styles missing from --before are
skipped. Writes `equal_content.json` and `equal_content.md` in --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from gallery import IMAGES, INPUTS, mean_metrics, styles_to_render
from PIL import Image

from styleengine.core.fsutil import atomic_path
from styleengine.engine.postprocess import blend
from styleengine.engine.stylizer import Stylizer

HERE = Path(__file__).resolve().parent
BEFORE = HERE / "results" / "gallery_before.json"
OUT = HERE / "results"


def strength_for_content(content, photo: np.ndarray, output: np.ndarray, target: float, *,
                         iterations: int = 12) -> tuple[float, float]:
    """(strength, content distance there): the largest strength whose blend keeps content distance <= target,
    by bisection; 1.0 where the full output already does."""
    full = content(photo, output)
    if full <= target:
        return 1.0, full
    lo, hi, at_lo = 0.0, 1.0, 0.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        d = content(photo, blend(photo, output, mid))
        if d <= target:
            lo, at_lo = mid, d
        else:
            hi = mid
    return lo, at_lo


def measure(styles: str, before: dict, inputs: dict[str, np.ndarray]) -> dict:
    from styleengine.engine.quality import ContentDistance, StyleDistance

    content = ContentDistance()
    out = {}
    for name, style, painting in styles_to_render(styles):
        earlier = before["styles"].get(name)
        if earlier is None:
            print(f"{name}: not in --before, skipped", file=sys.stderr)
            continue
        sd = StyleDistance(painting) if painting else None
        per = {}
        with Stylizer(style, "onnxruntime", precision="fp32") as st:
            for n, img in inputs.items():
                o = st(img)
                s, c = strength_for_content(content, img, o, earlier[n]["content_distance"])
                mixed = blend(img, o, s)
                per[n] = {"strength": round(s, 4), "content_distance": round(c, 4),
                          "content_distance_before": earlier[n]["content_distance"],
                          "style_distance": round(sd.image(mixed), 4) if sd else None,
                          "style_distance_full": round(sd.image(o), 4) if sd else None,
                          "style_distance_before": earlier[n].get("style_distance")}
        out[name] = {"images": per, "mean": mean_metrics(per, next(iter(per.values())))}
    return out


def markdown(result: dict, before: Path) -> str:
    lines = ["# Style distance at equal content preservation", "",
             f"Earlier models: `{before.name}`. Per gallery image, the strength (`--strength`) at which the content "
             "distance equals the earlier model's; the style distance there (lower = closer to the painting). "
             "Means over the gallery's four images.", "",
             "| style | strength | content distance (earlier) | style distance at that strength | at full strength "
             "| earlier | change at equal content |",
             "|---|---|---|---|---|---|---|"]
    for name, r in result.items():
        m = r["mean"]
        row = f"| {name} | {m['strength']:.3f} | {m['content_distance']:.4f} ({m['content_distance_before']:.4f}) |"
        if "style_distance" in m and "style_distance_before" in m:
            change = f"{(m['style_distance'] / m['style_distance_before'] - 1) * 100:+.1f}%"
            row += (f" {m['style_distance']:.4f} | {m['style_distance_full']:.4f} | {m['style_distance_before']:.4f} "
                    f"| {change} |")
        else:
            row += " – | – | – | – |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default="all")
    ap.add_argument("--before", type=Path, default=BEFORE)
    ap.add_argument("--inputs", type=Path, default=INPUTS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    before = json.loads(args.before.read_text())
    inputs = {n: np.asarray(Image.open(args.inputs / n).convert("RGB")) for n in IMAGES}
    result = measure(args.styles, before, inputs)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"before": args.before.name, "inputs": list(IMAGES), "styles": result}
    with atomic_path(args.out / "equal_content.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    with atomic_path(args.out / "equal_content.md", suffix=".md") as tmp:
        tmp.write_text(markdown(result, args.before))
    print(args.out / "equal_content.md")


if __name__ == "__main__":
    main()
