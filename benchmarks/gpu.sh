#!/usr/bin/env bash
# The one script a device session runs (NVIDIA H100/H200 kinds): torch-CUDA grid + streaming pipeline, <= 8 min.
#
# NOT RUN YET: written in a session without a GPU (see benchmarks/README.md, "GPU session").
#
# What it measures (johnson preset, random weights: speed does not depend on weight values):
#   1. measured ceilings: matmul FP32/TF32/FP16/BF16 TFLOP/s, device copy TB/s, pinned H2D/D2H GB/s (gpu_peak.py)
#   2. `styleengine bench` at 720p/1080p/4K, batch 1 and 8: eager FP32 baseline, FP16 channels_last (fp16-cl),
#      FP16 CUDA graphs (cudagraph), and the torch backend (FP32 and FP16, channels_last + CUDA graphs)
#   3. the streaming pipeline (benchmarks/stream.py) on the shared 720p clip, torch backend on CUDA
#   4. torch.compile (inductor, static shapes) per size, batch 1 and 8, while the time budget lasts
# Every step is time-boxed; whatever finished is merged into $OUT after each step (gpu_summary.py).
#
# Inputs the device machine does NOT have, carried with the call:
#   .whl/av-*.whl      PyAV (missing from the device image), installed into /tmp/site
#   .carry/big_buck_bunny_720p.mp4   the shared 720p clip (/work/shared is not sent; copy it into .carry/)
# Prepare here (once):  echo /.carry/ >> .git/info/exclude; mkdir -p .carry
#   cp /work/shared/data/video/big_buck_bunny_720p.mp4 .carry/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0
# Device call:  run(command="bash benchmarks/gpu.sh", carry=[".whl", ".carry"], timeout_s=540)
# Results come back as $OUT/{gpu_summary.md, gpu_results.json, gpu_latency.png, gpu_sh.log} (4 files; the
# device returns at most 8). Copy them to benchmarks/results/gpu_<card>/ and quote only those numbers.
#
# Usage: bash benchmarks/gpu.sh [CLIP]     env: OUT (default ./gpu-out), BUDGET seconds (default 450)
# Smoke test of the flow on a CPU machine (tiny sizes; GPU-only steps fail or list themselves as unavailable):
#   PY=.venv/bin/python DEVICE=cpu SIZES=64 COMPILE_SIZES=64 BATCHES=1,2 STREAM_PRESET=fast \
#     STREAM_ARGS="--seconds 0.5 --max-size 160" OUT=/tmp/gpu-smoke BUDGET=400 bash benchmarks/gpu.sh
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$REPO/gpu-out}
BUDGET=${BUDGET:-450}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-720p,1080p,4k}
COMPILE_SIZES=${COMPILE_SIZES-720p 1080p 4k}  # set empty to skip the compile step
BATCHES=${BATCHES:-1,8}
STREAM_PRESET=${STREAM_PRESET:-johnson}
STREAM_ARGS=${STREAM_ARGS:-}
CLIP=${1:-${STREAM_CLIP:-$REPO/.carry/big_buck_bunny_720p.mp4}}
WORK=$(mktemp -d /tmp/gpu_work.XXXX)
mkdir -p "$OUT"
LOG="$OUT/gpu_sh.log"
START=$SECONDS
log() { echo "[gpu.sh +$((SECONDS - START))s] $*" | tee -a "$LOG" >&2; }
left() { echo $((BUDGET - (SECONDS - START))); }
summary() { "$PY" "$REPO/benchmarks/gpu_summary.py" "$WORK" "$OUT" >"$WORK/summary.txt" 2>>"$LOG" || log "summary failed"; }
# step NAME MAX_SECONDS MIN_SECONDS CMD...: run CMD with a time box of min(MAX, time left); skip if < MIN left.
step() {
  local name=$1 max=$2 need=$3; shift 3
  local avail; avail=$(left)
  if (( avail < need )); then log "SKIP $name: ${avail}s left, needs ${need}s"; return 0; fi
  local box=$(( avail < max ? avail : max ))
  log "START $name (time box ${box}s)"
  timeout --kill-after=10 "$box" "$@" >>"$LOG" 2>&1
  local rc=$?
  if (( rc == 124 || rc == 137 )); then log "TIMEOUT $name after ${box}s"; elif (( rc != 0 )); then log "FAIL $name (exit $rc)"; else log "DONE $name"; fi
  summary
}

# --- environment: carried wheels, styleengine importable from the checkout (pyproject's package-dir mapping)
if ls "$REPO"/.whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$REPO"/.whl/*.whl \
    >>"$LOG" 2>&1 && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || log "wheel install failed"
else
  log "no .whl/ carried: PyAV missing, the streaming step will fail"
fi
SHIM=$(mktemp -d /tmp/se_shim.XXXX)
mkdir "$SHIM/styleengine"
for f in "$REPO"/styleengine/*; do ln -s "$f" "$SHIM/styleengine/"; done
for s in train export engine; do ln -s "$REPO/$s" "$SHIM/styleengine/$s"; done
export PYTHONPATH=$SHIM:${PYTHONPATH:-}
export PYTHONUNBUFFERED=1
SE=("$PY" -c 'from styleengine.cli import main; main()')  # an array, not a function: `timeout` must exec it

nvidia-smi >"$WORK/nvidia-smi.txt" 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv >>"$WORK/nvidia-smi.txt" 2>&1
"${SE[@]}" env --json >"$WORK/env.json" 2>>"$LOG" || log "styleengine env failed"
"$PY" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), torch.cuda.is_available() and torch.cuda.get_device_name())' >>"$LOG" 2>&1

# --- 1. ceilings
step peak 60 20 "$PY" "$REPO/benchmarks/gpu_peak.py" --out "$WORK/peak.json"

# --- 2. the torch grid (baseline + fp16-cl + cudagraph + torch backend fp32/fp16): 10 rows per size, one call per
#        size so a time-out loses only that size
for size in ${SIZES//,/ }; do
  step "grid-$size" 150 40 "${SE[@]}" bench johnson --device "$DEVICE" --backend torch --precision fp32,fp16 \
    --variant fp16-cl,cudagraph --size "$size" --batch "$BATCHES" --warmup 5 --seconds 1 --json "$WORK/bench_torch_$size.json"
done

# --- 3. streaming pipeline on the carried 720p clip (torch backend), random-weight preset, torch-only bundle
if [[ -f "$CLIP" ]]; then
  "$PY" -c "from pathlib import Path; from styleengine.engine.bench.source import make_random_bundle as m; m('$STREAM_PRESET', Path('$WORK/stream.engine'), need_onnx=False)" >>"$LOG" 2>&1 \
    || log "random bundle failed"
  step stream 120 45 "$PY" "$REPO/benchmarks/stream.py" "$CLIP" --style "$WORK/stream.engine" --backend torch \
    --device "$DEVICE" --out "$WORK/stream_720p.json" --label "$(basename "$CLIP") $STREAM_PRESET(random) torch-$DEVICE" $STREAM_ARGS
else
  log "SKIP stream: clip not found at $CLIP (the device gets no /work/shared: carry it in .carry/)"
fi

# --- 4. torch.compile, one size per call so a slow compile costs only its own rows (baseline re-measured alongside)
for size in $COMPILE_SIZES; do
  step "compile-$size" 150 50 "${SE[@]}" bench johnson --device "$DEVICE" --backend none --variant compile --size "$size" \
    --batch "$BATCHES" --warmup 3 --seconds 1 --json "$WORK/bench_compile_$size.json"
done

summary
cat "$WORK/summary.txt"
log "finished in $((SECONDS - START))s; results in $OUT"
