"""ONNX-vs-torch parity of exported models (ONNX Runtime CPU) on trained and random weights at several sizes.

    python benchmarks/export_parity.py [CHECKPOINT ...] [--sizes 37x53,64x48,360x640,719x1281] [--random johnson]
    python benchmarks/export_parity.py --smoke [--out F]    # one built-in, one small size, no random network

Each checkpoint (default: the built-in styles' model.pt) goes through the same export as `styleengine build` (dynamo
export, onnxslim if outputs hold, mixed FP16 conversion); both models are compared with the torch network on the
same frames (uint8 levels). Odd sizes on purpose: the graph pads to a multiple of 4 and crops back.
Result: benchmarks/results/export_parity.json (+ environment block), or --out; --smoke writes to --out or a
temporary file, never to results/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "export_parity.json"
SIZES = "37x53,64x48,360x640,719x1281"
RANDOM = "johnson"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*", type=Path)
    ap.add_argument("--sizes", default=SIZES)
    ap.add_argument("--random", default=RANDOM, help="also a random-weight network of this preset ('' = none)")
    ap.add_argument("--out", type=Path, default=None, help=f"default {RESULTS}")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long run proving the script works: the first built-in only (unless CHECKPOINTs), "
                         "size 37x53, no random network (unless --random is given)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.sizes = "37x53" if args.sizes == SIZES else args.sizes
        args.random = "" if args.random == RANDOM else args.random
        args.out = args.out or Path(tempfile.mkdtemp(prefix="export_parity_smoke_")) / "export_parity.json"
    args.out = args.out or RESULTS

    import torch

    from styleengine.core.checkpoint import load_checkpoint, save_model
    from styleengine.core.fsutil import atomic_path
    from styleengine.core.network import TransformerNet, preset
    from styleengine.engine.builtin_styles import list_builtins
    from styleengine.engine.environment import environment
    from styleengine.export.fp16 import export_fp16
    from styleengine.export.onnx_export import export_onnx, read_metadata
    from styleengine.export.parity import onnx_parity

    sizes = []
    for s in args.sizes.split(","):
        h, w = (int(v) for v in s.lower().split("x"))
        sizes.append((1, h, w))
    # Built-ins are bundles now: each one's model.pt is the checkpoint it was built from.
    checkpoints = list(args.checkpoints) or [b.checkpoint for b in list_builtins()]
    if args.smoke and not args.checkpoints:
        checkpoints = checkpoints[:1]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        if args.random:
            torch.manual_seed(0)
            checkpoints.append(save_model(d / f"random_{args.random}.pt", TransformerNet(preset(args.random)),
                                          style={"name": f"random-{args.random}"}, loss_net="none (random weights)"))
        for i, path in enumerate(checkpoints):
            ckpt = load_checkpoint(path)
            print(f"{ckpt.style_name} ({ckpt.arch.preset}) ...", file=sys.stderr, flush=True)
            fp32 = export_onnx(ckpt, d / f"{i}_fp32.onnx")
            fp16 = export_fp16(fp32, d / f"{i}_fp16.onnx")
            meta = read_metadata(fp32)
            row = {"checkpoint": str(path) if path.parent != d else None, "style": ckpt.style_name,
                   "preset": ckpt.arch.preset, "trained": path.parent != d,
                   "exporter": meta.get("exporter"), "opset": meta.get("opset"), "simplify": meta.get("simplify")}
            for precision, model in (("fp32", fp32), ("fp16", fp16)):
                r = onnx_parity(model, ckpt, sizes=sizes, precision=precision)
                row[precision] = {"max_abs_diff": r["max_abs_diff"], "tolerance": r["tolerance"], "ok": r["ok"],
                                  "sizes": r["sizes"]}
            rows.append(row)
            print(f"  fp32 max diff {row['fp32']['max_abs_diff']}, fp16 max diff {row['fp16']['max_abs_diff']} "
                  f"(sizes {args.sizes})")
    result = {"sizes": args.sizes, "runtime": "onnxruntime CPUExecutionProvider", "models": rows,
              "environment": environment()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
