#!/usr/bin/env bash
# The checks that need a GPU, as two runs on a lent GPU machine (the device tool), the second
# within the machine's idle time of the first (about 13 minutes in all, with the machine's start):
#   run(command="bash bench/gpu_session.sh", carry=[".whl"], timeout_s=600)     # devices, gpu: ~7 minutes
#   run(command="bash bench/gpu_session.sh repro ddp", carry=[".whl"], timeout_s=400)
# Parts (the arguments; default: devices gpu): devices (tests/test_devices.py: ops, kernels,
# NCCL, two ranks), gpu (bench/gpu.py's GPT-2 rows, mixed precision beside PyTorch), repro
# (nanoGPT's shakespeare_char in bfloat16, bench/RESULTS.md's recipe, needs
# ../shared/data/tinyshakespeare.txt: its 5000-step schedule, stopped by the part's 4-minute limit,
# which is past step 1250, where the float32 run first got under val 1.50), ddp (bench/ddp.py).
#
# .whl/ (git-ignored) carries what that machine lacks and cannot download: an MPI library (the mpich
# wheel) and mpi4py built for it, for Python 3.10-3.13; ml_dtypes in case the machine has none:
#   pip download --only-binary=:all: --no-deps --python-version 3.12 --platform manylinux1_x86_64 \
#       -d .whl mpi4py==4.1.2      (and mpich==5.0.2, ml_dtypes==0.7.0)
# They go under /tmp/site (a prefix, so that mpiexec and libmpi come with them), found through PATH,
# PYTHONPATH and LD_LIBRARY_PATH. Each part's output goes to $OUT/<part>.txt; a table of results last.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_session}; mkdir -p "$OUT"
py=$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
site=/tmp/site
wheels=(.whl/mpi4py-*-cp"$py"-*.whl .whl/mpich-*.whl)
python3 -c 'import ml_dtypes' 2>/dev/null || wheels+=(.whl/ml_dtypes-*-cp"$py"-*.whl)
python3 -m pip install -q --no-index --no-deps --no-compile --prefix "$site" "${wheels[@]}" > "$OUT/install.txt" 2>&1 \
  || echo "wheels not installed (see install.txt): the MPI parts will skip or fail"
packages=$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}/site-packages")')
export PATH="$site/bin:$PATH" PYTHONPATH="$site/lib/$packages${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$site/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OPENBLAS_NUM_THREADS=2

part() {  # part NAME SECONDS COMMAND...: run it with a time limit, its output kept; one line of result
  local name=$1 limit=$2; shift 2
  local began=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1; local rc=$?
  printf '%-8s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - began))" "$(tail -n 1 "$OUT/$name.txt" | cut -c1-100)" >> "$OUT/summary.txt"
}
: > "$OUT/summary.txt"
parts=("$@"); [ $# -eq 0 ] && parts=(devices gpu)
for name in "${parts[@]}"; do case $name in
  devices) part devices 200 env TINYLLM_TEST_DEVICES=cpu,cuda python3 -m pytest -q tests/test_devices.py ;;
  ddp) part ddp 90 python3 bench/ddp.py --device cuda --preset char-small --batch 32 --steps 5 ;;
  gpu) part gpu 240 python3 bench/gpu.py --presets gpt2 --precisions fp32,bf16,fp16 --steps 5 ;;
  repro) part repro 240 python3 -m tinyllm train --data ../shared/data/tinyshakespeare.txt --preset char-small \
           --device cuda --dtype bfloat16 --batch-size 64 --max-iters 5000 --lr 1e-3 --min-lr 1e-4 \
           --warmup-iters 100 --beta2 0.99 --dropout 0.2 --eval-interval 250 --eval-iters 200 --log-interval 250 \
           --sample-interval 1000 --out /tmp/repro ;;     # its log comes back, not its 130 MB checkpoint
  *) echo "unknown part $name (devices, ddp, gpu, repro)"; exit 2 ;;
esac; done
for f in ddp gpu; do [ -f "$OUT/$f.txt" ] && tail -n 12 "$OUT/$f.txt"; done
[ -f "$OUT/repro.txt" ] && grep "eval:" "$OUT/repro.txt"
echo; cat "$OUT/summary.txt"
