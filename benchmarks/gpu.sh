#!/usr/bin/env bash
# THE device command: every GPU measurement and GPU test of this repository, in one time-boxed run (< 8 min).
#
#   run(command="bash benchmarks/gpu.sh", carry=[".whl", ".carry"], timeout_s=540)      # on the device machine
#   SMOKE=1 OUT=/tmp/gpu-smoke bash benchmarks/gpu.sh        # the same steps on a CPU at tiny sizes (CI runs this)
#
# Works from an UNINSTALLED copy of the repository: benchmarks/shim/ goes first on PYTHONPATH, and its
# sitecustomize maps styleengine, styleengine.train/.export/.engine to this copy's folders in every Python
# process of the run (pyproject's package-dir mapping); shim_record.jsonl proves where the code came from.
#
# Steps, in order of what the run must not lose (each under `timeout`, boxed to min(its box, time left of
# BUDGET); a step that would start with less than its minimum left is "skipped"):
#   setup         PyAV from the carried .whl/av-*.whl into a scratch site dir (pip --no-index --target)
#   env           nvidia-smi, `styleengine env --json`, torch/CUDA/cuDNN versions
#   peak          measured ceilings: matmul FP32/TF32/FP16/BF16, device copy, pinned H2D/D2H (gpu_peak.py)
#   grid-1080p    `styleengine bench johnson` (random weights) batch 1 and 8: eager FP32 with TF32 OFF (the
#                 baseline), TF32, FP16 channels_last, CUDA graphs, the torch backend as shipped (FP32, FP16)
#   stream-720p   file -> file on the 720p clip (.carry/big_buck_bunny_720p.mp4, else a synthetic 720p clip):
#                 pure inference, I/O ceiling, naive loop, the pipeline (gpu_stream.py)
#   train         trainer steps/s (AMP, channels_last, as shipped) vs a plain FP32 loop (TF32 off) (gpu_train.py)
#   pytest        `pytest -m "gpu or tensorrt"` through the shim
#   grid-720p, grid-4k      the grid at the other sizes
#   compile-1080p torch.compile (inductor) rows at 1080p, batch 1 and 8 (baseline re-measured beside them)
#   torch-fp16    interleaved eager FP32 (TF32 off) vs the shipped torch backend, FP16-vs-FP32 difference
#   export-check  TensorRT build/refit and ONNX Runtime CUDA FP16 (skipped where neither is installed)
#
# Results: $OUT/summary.json ({"steps": [{name, status ok|skipped|failed, seconds, reason}], "goals": [...],
# "measured": {...}, "code": {...}}), rewritten after EVERY step so a killed run still leaves one;
# $OUT/results.json (every step's raw JSON), $OUT/summary.md (tables), $OUT/latency.png, $OUT/gpu_sh.log.
# Five files: the device returns at most 8. Scratch (raw step files, the clip copies) lives in a temp dir.
#
# A call sends at most 64 MiB: move benchmarks/results (93 of the 119 MiB tracked) out of the checkout for the call.
# Prepare once in the checkout (the device image has no PyAV, and ../shared is not sent):
#   printf '/.whl/\n/.carry/\n' >> .git/info/exclude; mkdir -p .carry
#   cp /work/shared/data/video/big_buck_bunny_720p.mp4 .carry/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0
#
# Environment: OUT (default ./gpu-out), PY (python3), BUDGET seconds (450; smoke 400), SMOKE=1, CLIP (720p clip),
# KEEP_WORK=1 (keep the scratch folder), ONLY="grid-4k compile-1080p" (run just these steps, e.g. a second run;
# env always runs).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SMOKE=${SMOKE:-0}
PY=${PY:-python3}
BUDGET=${BUDGET:-$([[ $SMOKE == 1 ]] && echo 400 || echo 450)}
OUT=${OUT:-$REPO/gpu-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd -P) || { echo "gpu.sh: cannot create OUT=$OUT" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_sh.XXXXXX")
[[ ${KEEP_WORK:-0} == 1 ]] || trap 'rm -rf "$WORK"' EXIT  # its contents are in $OUT/results.json
LOG=$OUT/gpu_sh.log
STEPS=$WORK/steps.jsonl
: >"$LOG"
: >"$STEPS"
START=$SECONDS

export PYTHONPATH="$REPO/benchmarks/shim${PYTHONPATH:+:$PYTHONPATH}"
export STYLEENGINE_SHIM_RECORD=$WORK/shim_record.jsonl
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
cd "$WORK" || exit 2  # nothing depends on the working directory

log() { echo "[gpu.sh +$((SECONDS - START))s] $*" | tee -a "$LOG" >&2; }
left() { echo $((BUDGET - (SECONDS - START))); }
now() { echo "${EPOCHREALTIME:-$SECONDS}"; }
json_str() {  # a JSON string literal of $1 (one line, control characters as spaces)
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$(printf '%s' "$s" | tr '\000-\037' ' ')"
}
record() {  # record NAME STATUS SECONDS REASON
  printf '{"name": %s, "status": %s, "seconds": %s, "reason": %s}\n' "$(json_str "$1")" "$(json_str "$2")" \
    "$3" "$(json_str "$4")" >>"$STEPS"
  log "$2 $1 (${3}s)${4:+: $4}"
  summarize
}
summarize() {  # summary.json (+ results.json, summary.md) from what exists now; a bash fallback if Python fails
  local final=${1:-}
  if ! "$PY" "$REPO/benchmarks/gpu_summary.py" --work "$WORK" --out "$OUT" --budget "$BUDGET" \
       --smoke "$SMOKE" --engine-size "$ENGINE_SIZE" --elapsed $((SECONDS - START)) $final >>"$LOG" 2>&1; then
    { printf '{"format": "styleengine.gpu-session/2", "summary_error": "gpu_summary.py failed (see gpu_sh.log)", "steps": ['
      paste -sd, "$STEPS"
      printf ']}\n'; } >"$OUT/summary.json"
  fi
}
# step NAME BOX MIN CMD...: run CMD under `timeout` for min(BOX, time left) seconds, or skip it when less than
# MIN seconds are left. Exit 3 with a last line "SKIP: reason" means the step itself found it cannot run here.
step() {
  local name=$1 box=$2 need=$3; shift 3
  if [[ -n ${ONLY:-} && $name != env && " $ONLY " != *" $name "* ]]; then record "$name" skipped 0 "not in ONLY=\"$ONLY\""; return 0; fi
  local avail; avail=$(left)
  if (( avail < need )); then record "$name" skipped 0 "time budget: ${avail}s left of ${BUDGET}s, the step needs ${need}s"; return 0; fi
  (( box > avail )) && box=$avail
  log "START $name (time box ${box}s): $*"
  local slog=$WORK/step_$name.log t0 rc secs reason status
  t0=$(now)
  timeout --kill-after=10 "$box" "$@" >"$slog" 2>&1
  rc=$?
  secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  cat "$slog" >>"$LOG"
  reason=$(grep -v '^[[:space:]]*$' "$slog" | tail -n 1 | cut -c1-300)
  if (( rc == 0 )); then status=ok reason=""
  elif (( rc == 3 )) && grep -q '^SKIP: ' "$slog"; then status=skipped reason=$(grep '^SKIP: ' "$slog" | tail -n 1 | cut -c7-306)
  elif (( rc == 124 || rc == 137 )); then status=failed reason="timed out after ${box}s (its time box); last output: $reason"
  else status=failed reason="exit $rc: $reason"; fi
  record "$name" "$status" "$secs" "$reason"
}
skip() { record "$1" skipped 0 "$2"; }

# --- what differs in smoke mode: sizes, device, iteration counts (the steps and their code paths are the same)
if [[ $SMOKE == 1 ]]; then
  DEVICE=cpu; ENGINE_SIZE=64x96; BATCHES=1,2; TIMING=(--warmup 1 --iters 3)
  SMOKE_ARG=(--smoke); NO_GPU="SMOKE=1 on a CPU"
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # a shared CI box: one intra-op thread per process keeps it quick
else
  DEVICE=cuda; ENGINE_SIZE=1080p; BATCHES=1,8; TIMING=(--warmup 3 --seconds 0.5)
  SMOKE_ARG=(); NO_GPU=""
fi
SE=("$PY" -m styleengine)
grid() {  # grid LABEL SIZE BOX MIN: baseline + TF32 + FP16 variants + the torch backend as shipped
  step "grid-$1" "$3" "$4" "${SE[@]}" bench johnson --device "$DEVICE" --backend torch --precision fp32,fp16 \
    --variant tf32,fp16-cl,cudagraph --size "$2" --batch "$BATCHES" "${TIMING[@]}" \
    --save-json "$WORK/bench_$1.json" --overwrite
}
log "gpu.sh in $REPO (SMOKE=$SMOKE, budget ${BUDGET}s, python $PY, scratch $WORK, results $OUT)"

# --- setup: PyAV (not in the device image) from the carried wheel
t0=$(now)
if ls "$REPO"/.whl/av-*.whl >/dev/null 2>&1; then
  if timeout 90 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
       --target "$WORK/site" "$REPO"/.whl/*.whl >>"$LOG" 2>&1; then
    export PYTHONPATH=$PYTHONPATH:$WORK/site
    record setup ok "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')" "PyAV installed from .whl/"
  else
    record setup failed "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')" "pip install of .whl/*.whl failed (see gpu_sh.log)"
  fi
elif "$PY" -c "import av" >/dev/null 2>&1; then
  record setup ok 0 "PyAV already importable (no .whl/ carried)"
else
  record setup skipped 0 "no .whl/av-*.whl carried and PyAV not installed: the streaming step cannot run"
fi
HAVE_AV=0; "$PY" -c "import av" >/dev/null 2>&1 && HAVE_AV=1

# --- env
step env 60 10 bash -c '
  (nvidia-smi && nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv) >"$1/nvidia-smi.txt" 2>&1
  "$2" -m styleengine env --json >"$1/env.json" || exit
  "$2" -c "import sys, torch; print(\"python\", sys.version.split()[0], \"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version(), \"gpu\", torch.cuda.is_available() and torch.cuda.get_device_name())"
' _ "$WORK" "$PY"

# --- 1. ceilings of the card
if [[ -n $NO_GPU ]]; then skip peak "$NO_GPU: matmul/copy ceilings of an NVIDIA GPU"
else step peak 45 20 "$PY" "$REPO/benchmarks/gpu_peak.py" --out "$WORK/peak.json"; fi

# --- 2. the engine grid at the goal's size
if [[ $SMOKE == 1 ]]; then grid "$ENGINE_SIZE" "$ENGINE_SIZE" 120 20; else grid 1080p 1080p 100 40; fi

# --- 3. streaming file -> file at 720p
CLIP=${CLIP:-$REPO/.carry/big_buck_bunny_720p.mp4}
if (( HAVE_AV == 0 )); then skip stream-720p "PyAV missing: carry .whl/av-*.whl (see the header of this script)"
else
  CLIP_ARG=(); [[ -f $CLIP && $SMOKE != 1 ]] && CLIP_ARG=(--clip "$CLIP")  # else a synthetic clip
  step stream-720p 100 40 "$PY" "$REPO/benchmarks/gpu_stream.py" "${CLIP_ARG[@]}" "${SMOKE_ARG[@]}" \
    --out "$WORK/stream.json" --budget "$(( $(left) < 95 ? $(left) - 5 : 90 ))"
fi

# --- 4. training: as shipped (AMP) vs a plain FP32 loop
step train 90 40 "$PY" "$REPO/benchmarks/gpu_train.py" "${SMOKE_ARG[@]}" --out "$WORK/train.json"

# --- 5. the GPU tests, through the shim (on a CPU they all skip: what this proves there is collection)
DESELECT=()
if ! "$PY" -c "import tensorrt" >/dev/null 2>&1; then
  # It builds two ONNX exports in its fixtures before its importorskip("tensorrt"): minutes for a certain skip.
  DESELECT=(--deselect tests/export/test_tensorrt_build.py::test_real_tensorrt_build_refit_and_sidecar)
  log "no TensorRT here: deselecting ${DESELECT[1]} (fixtures before its importorskip)"
fi
step pytest 120 30 bash -c 'cd "$1" && shift && exec "$@"' _ "$REPO" "$PY" -m pytest -q -m "gpu or tensorrt" \
  -p no:cacheprovider --junitxml="$WORK/pytest.xml" "${DESELECT[@]}"

# --- 6. the grid at the other sizes
if [[ $SMOKE == 1 ]]; then skip grid-other-sizes "$NO_GPU: one tiny size stands for 720p/1080p/4K"
else
  grid 720p 720p 70 30
  grid 4k 4k 120 50
fi

# --- 7. torch.compile at 1080p
if [[ -n $NO_GPU ]]; then skip compile-1080p "$NO_GPU: an inductor compile takes minutes on 2 CPU cores (the rows are measured on the device)"
else
  step compile-1080p 120 60 "${SE[@]}" bench johnson --device "$DEVICE" --backend none --variant compile \
    --size 1080p --batch "$BATCHES" "${TIMING[@]}" --save-json "$WORK/compile_1080p.json" --overwrite
fi

# --- 8. interleaved cross-check of the shipped torch backend vs eager FP32
step torch-fp16 60 25 "$PY" "$REPO/benchmarks/gpu_torch_fp16.py" "${SMOKE_ARG[@]}" --output "$WORK/torch_fp16.json"

# --- 9. the export stage's GPU path (needs TensorRT or onnxruntime-gpu; the device image has neither)
step export-check 90 40 "$PY" "$REPO/benchmarks/gpu_export_check.py" "${SMOKE_ARG[@]}" --out "$WORK/export_check.json"

summarize --final
log "finished in $((SECONDS - START))s; results in $OUT"
exit 0
