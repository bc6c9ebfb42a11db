#!/usr/bin/env bash
# The GPU checks of the Triton backends ("fft", "butterfly", scan), in one call on a CUDA machine
# (at most ~9.5 min by the timeouts below; the device tool allows 10 min per call):
#   PYTHONPATH=. bash benchmarks/gpu_suite.sh
# 1. the fft GPU tests at real sizes (tests/ops/test_conv_fft_gpu.py), compiled, no interpreter;
# 2. the speed table of every backend against "torch" (benchmarks/speed/conv.py);
# 3. the linear_scan speed table (benchmarks/speed/scan.py, triton columns on CUDA);
# 4. every `gpu` or `triton` test under tests/ops compiled on the GPU (butterfly GPU tests included;
#    compiling the large butterfly kernels takes 15-55 s each, so this step may hit its timeout:
#    rerun it alone if so).
# `bash benchmarks/gpu_suite.sh native` runs instead (about 3 min): the native extension built with
# its CUDA kernels (nvcc), the vandermonde CUDA tests, and a CUDA timing of vandermonde against
# the "torch" backend.
# At most 8 files land in $OUT (the device tool brings back 8).
# Logs, CSV and Markdown go to $OUT (default benchmarks/results/gpu_suite); copy the
# conv_<device>.{csv,md} tables into benchmarks/results/ to keep them.
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu_suite}
mkdir -p "$OUT"
export TRITON_INTERPRET=0 TRITON_DEFAULT_FP_FUSION=${TRITON_DEFAULT_FP_FUSION:-1}
status=0
if [ "${1:-triton}" = "native" ]; then
    timeout 300 python -m seqlayers._native build 2>&1 | tee "$OUT/native_build.log"
    status=$((status | PIPESTATUS[0]))
    timeout 120 python -m pytest -p no:cacheprovider tests/ops/test_vandermonde_native_gpu.py -q -rs \
        --durations=5 2>&1 | tee "$OUT/pytest_native_gpu.log"
    status=$((status | PIPESTATUS[0]))
    timeout 120 python benchmarks/speed/kernel_gen.py --device cuda --backends torch native \
        --markdown "$OUT/kernel_gen_cuda.md" 2>&1 | tee "$OUT/bench_kernel_gen.log"
    status=$((status | PIPESTATUS[0]))
    echo "gpu_suite native exit status: $status" | tee -a "$OUT/native_build.log"
    exit "$status"
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} 2>&1 | tee "$OUT/env.log"

timeout 120 python -m pytest -p no:cacheprovider tests/ops/test_conv_fft_gpu.py -q -rs \
    --durations=10 2>&1 | tee "$OUT/pytest_fft_gpu.log"
status=$((status | PIPESTATUS[0]))

timeout 180 python benchmarks/speed/conv.py --out "$OUT" 2>&1 | tee "$OUT/bench_conv.log"
status=$((status | PIPESTATUS[0]))

timeout 60 python benchmarks/speed/scan.py 2>&1 | tee "$OUT/bench_scan.log"
status=$((status | PIPESTATUS[0]))
cp benchmarks/results/scan_cuda.md "$OUT/" 2>/dev/null

timeout 210 python -m pytest -p no:cacheprovider -m "gpu or triton" tests/ops -q -rs \
    --durations=10 2>&1 | tee "$OUT/pytest_gpu_triton.log"
status=$((status | PIPESTATUS[0]))

echo "gpu_suite exit status: $status" | tee -a "$OUT/env.log"
exit "$status"
