#!/usr/bin/env bash
# The GPU checks in one short script (well under 15 minutes on one H100), for a machine with an NVIDIA GPU:
#   1. the CUDA tests (tests/test_cuda.py: speed-ups on the GPU, device-resident and pinned-memory data,
#      GPU checkpoints resumed on the CPU, the RL Learner on the GPU);
#   2. bench/speedups.py --device cuda: what bf16, fp16, compile and channels_last do to training throughput;
#   3. a 4-trials-per-GPU diffusion sweep of --smoke-sized trials through Ray and MLflow (skipped, in one line,
#      where ray or mlflow is not installed);
#   4. bench/gpu.py: trials per GPU against throughput and utilisation.
# Results land in bench/results/ (speedups_cuda.json, gpu_<device>.json), and in $OUT when that is set (a
# lent GPU machine), with the log. Run from the repository root:  bash bench/gpu_check.sh
set -uo pipefail
PYTHON=${PYTHON:-python3}
OUT=${OUT:-}
export PYTHONUNBUFFERED=1 BENCH_GIT_COMMIT=${BENCH_GIT_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
log() { echo "[gpu_check] $*"; }
status=0

$PYTHON -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { log "no CUDA GPU is visible to torch; nothing to check"; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

log "1/4 CUDA tests"
$PYTHON -m pytest tests/test_cuda.py -q -p no:cacheprovider -o addopts="" 2>&1 | tail -25 || status=1

log "2/4 speed-ups on the GPU"
timeout 240 $PYTHON bench/speedups.py --device cuda --repeats 2 --seconds 4 || status=1

log "3/4 a 4-trials-per-GPU diffusion sweep"
if $PYTHON -c "import ray, mlflow" 2>/dev/null; then
  work=$(mktemp -d)
  timeout 300 $PYTHON -m orchestration.sweep diffusion --smoke --gpus-per-trial 0.25 --verbose 0 \
    --storage-path "$work/ray_results" --tracking-uri "sqlite:///$work/mlflow.db" 2>&1 | grep '^\[sweep\]' || status=1
  $PYTHON - "$work/mlflow.db" <<'EOF' || status=1
import sys
from mlflow.tracking import MlflowClient
client = MlflowClient(f"sqlite:///{sys.argv[1]}")
runs = [r for r in client.search_runs([client.get_experiment_by_name("diffusion").experiment_id])
        if "mlflow.parentRunId" in r.data.tags]
for r in runs:
    print("[gpu_check]", r.info.run_name, {k: v for k, v in r.data.tags.items() if k.startswith("device.")})
assert runs and all(r.data.tags["device.torch"].startswith("cuda") for r in runs), "a trial did not train on the GPU"
EOF
else
  log "3/4 skipped: ray or mlflow is not installed here"
fi

log "4/4 trials per GPU"
timeout 300 $PYTHON bench/gpu.py --iterations 1 || status=1

if [ -n "$OUT" ]; then cp bench/results/speedups_cuda.json bench/results/gpu_*.json "$OUT"/ 2>/dev/null; fi
log "done, status $status"
exit $status
