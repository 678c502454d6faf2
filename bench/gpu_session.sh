#!/usr/bin/env bash
# The checks that need a GPU, as one run on a lent GPU machine (the device tool):
#   run(command="bash bench/gpu_session.sh", carry=[".whl"], timeout_s=600)     # about 8 minutes
#   run(command="bash bench/gpu_session.sh repro", carry=[".whl"], timeout_s=600)
# Parts (the arguments; default: devices ddp gpu): devices (tests/test_devices.py: ops, kernels,
# NCCL, two ranks), ddp (bench/ddp.py), gpu (bench/gpu.py's GPT-2 rows, mixed precision beside
# PyTorch), repro (nanoGPT's shakespeare_char in bfloat16, bench/RESULTS.md's recipe: needs
# ../shared/data/tinyshakespeare.txt, about 5 minutes).
# .whl/ (git-ignored) carries the wheels that machine lacks and cannot download: mpi4py and mpich
# (the [dist] extra) and ml_dtypes (bfloat16), for Python 3.10-3.13:
#   pip download --only-binary=:all: --no-deps --python-version 3.12 --platform manylinux1_x86_64 -d .whl mpi4py==4.1.2
# Each part's output goes to $OUT/<part>.txt; the short table of results is printed last.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_session}; mkdir -p "$OUT"
py=$(python -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
python -m pip install -q --no-index --no-deps .whl/*-"$py"-*.whl .whl/mpich-*.whl > "$OUT/install.txt" 2>&1 \
  || echo "wheels not installed (see install.txt): the MPI and bfloat16 parts will skip"
export PATH="$(dirname "$(command -v python)"):$PATH" OPENBLAS_NUM_THREADS=2

part() {  # part NAME SECONDS COMMAND...: run it with a time limit, its output kept; one line of result
  local name=$1 limit=$2; shift 2
  local began=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1; local rc=$?
  printf '%-12s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - began))" "$(tail -n 1 "$OUT/$name.txt" | cut -c1-100)" >> "$OUT/summary.txt"
}
: > "$OUT/summary.txt"
parts=("$@"); [ $# -eq 0 ] && parts=(devices ddp gpu)
for name in "${parts[@]}"; do case $name in
  devices) part devices 200 env TINYLLM_TEST_DEVICES=cpu,cuda python -m pytest -q -x tests/test_devices.py ;;
  ddp) part ddp 90 python bench/ddp.py --device cuda --preset char-small --batch 32 --steps 5 ;;
  gpu) part gpu 240 python bench/gpu.py --presets gpt2 --precisions fp32,bf16,fp16 --steps 5 ;;
  repro) part repro 420 python -m tinyllm train --data ../shared/data/tinyshakespeare.txt --preset char-small \
           --device cuda --dtype bfloat16 --tf32 --batch-size 64 --max-iters 5000 --lr 1e-3 --min-lr 1e-4 \
           --warmup-iters 100 --beta2 0.99 --dropout 0.2 --eval-interval 250 --eval-iters 200 --log-interval 250 \
           --sample-interval 1000 --out /tmp/repro ;;     # its log comes back, not its 130 MB checkpoint
  *) echo "unknown part $name (devices, ddp, gpu, repro)"; exit 2 ;;
esac; done
for f in ddp gpu repro; do [ -f "$OUT/$f.txt" ] && tail -n 12 "$OUT/$f.txt"; done
echo; cat "$OUT/summary.txt"
