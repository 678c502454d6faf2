#!/usr/bin/env bash
# The checks that need a GPU, as one run on a lent GPU machine (the device tool), about 8 minutes:
#   run(command="bash bench/gpu_session.sh", carry=[".whl"], timeout_s=600)
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
part devices 200 env TINYLLM_TEST_DEVICES=cpu,cuda python -m pytest -q -x tests/test_devices.py
part ddp 90 python bench/ddp.py --device cuda --preset char-small --batch 32 --steps 5
part gpu 240 python bench/gpu.py --presets gpt2 --precisions fp32,bf16,fp16 --steps 5
tail -n 12 "$OUT/ddp.txt" "$OUT/gpu.txt"
echo; cat "$OUT/summary.txt"
