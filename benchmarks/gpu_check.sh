#!/usr/bin/env bash
# Issue 23's check on a lent GPU machine, in one bounded call (about 9 minutes on an H200):
# install what benchmarks/gpu_carry.sh gathered, then `researchgym doctor --json` (bubblewrap,
# extras, the accelerator on the host and inside a task sandbox), `researchgym doctor --gpu`
# (Mountain Car Continuous -v0 trained and scored end to end in the sandbox) and
# benchmarks/rl_baselines.py on Breakout MinAtar and Meta Maze -v0 (training, validate and
# submit times and scores). Every output goes to $OUT; each step has its own time limit, so a
# slow one costs its own figures only. The image's JAX (0.11.2, CUDA 13) stands in for the
# project's pin (0.10.2): say so beside the figures in benchmarks/RESULTS.md.
#
#     device run, carry [".device-carry"], timeout_s 600:
#         bash benchmarks/gpu_check.sh
#
# Here, without a GPU, `PY=.venv/bin/python bash benchmarks/gpu_check.sh --no-install` runs the
# same steps on this checkout's environment (the GPU ones then report that no GPU is visible).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
step() {  # step NAME SECONDS COMMAND...: run with a limit, keep its output, note its status
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    local started=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local status=$?
    tail -n 40 "$OUT/$name.txt"
    echo "== $name: exit $status after $((SECONDS - started))s" | tee -a "$OUT/summary.txt"
}
if [ "${1:-}" != "--no-install" ]; then
    if ! command -v bwrap > /dev/null; then  # unpacked beside /, never over it
        dpkg -x .device-carry/bubblewrap_*.deb /tmp/bwrap-root && export PATH="/tmp/bwrap-root/usr/bin:$PATH"
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade .device-carry/wheels/*.whl \
        && "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir . \
        || { echo "install failed"; exit 1; }
fi
RG=("$PY" -c "from researchgym.cli import app; app()")
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; "$PY" --version;
  "$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"; command -v bwrap; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
step doctor 90 "${RG[@]}" doctor --json
step doctor-gpu 180 "${RG[@]}" doctor --gpu
step baselines 280 "$PY" benchmarks/rl_baselines.py rl-breakout-minatar rl-meta-maze
cat "$OUT/summary.txt"
