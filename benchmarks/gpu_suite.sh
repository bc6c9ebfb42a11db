#!/usr/bin/env bash
# The GPU checks and benchmarks, in parts that each fit one device call (<= 10 min):
#   PYTHONPATH=. bash benchmarks/gpu_suite.sh            # = triton (about 6 min)
#   PYTHONPATH=. bash benchmarks/gpu_suite.sh butterfly  # about 8 min, mostly Triton compiles
#   PYTHONPATH=. bash benchmarks/gpu_suite.sh native     # about 3 min
# triton:    the fft GPU tests at real sizes, compiled (tests/ops/test_conv_fft_gpu.py); the speed
#            table of every long_conv backend against "torch" (benchmarks/speed/conv.py); the
#            linear_scan speed table (benchmarks/speed/scan.py, triton columns on CUDA); the Triton
#            scan tests compiled.
# butterfly: the butterfly GPU tests (one-pass and outer pass, compiled; the first compile of the
#            large 64x64 kernels takes up to ~75 s each), then the butterfly interpreter tests
#            compiled on the GPU.
# native:    the native extension built with its CUDA kernels (nvcc), the vandermonde CUDA tests,
#            and kernel generation timed against the "torch" backend on CUDA.
# Logs, CSV and Markdown go to $OUT (default benchmarks/results/gpu_suite), at most 8 files per part
# (the device tool brings back 8); copy the *_cuda / conv_<device> tables into benchmarks/results/.
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu_suite}
PART=${1:-triton}
mkdir -p "$OUT"
export TRITON_INTERPRET=0 TRITON_DEFAULT_FP_FUSION=${TRITON_DEFAULT_FP_FUSION:-1}
status=0

step() {  # step SECONDS LOG command...: run with a timeout, tee its output, remember failures
    local seconds=$1 log=$2
    shift 2
    timeout "$seconds" "$@" 2>&1 | tee "$OUT/$log"
    status=$((status | PIPESTATUS[0]))
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} 2>&1 | tee "$OUT/env_$PART.log"

case "$PART" in
triton)
    step 120 pytest_fft_gpu.log python -m pytest -p no:cacheprovider tests/ops/test_conv_fft_gpu.py -q -rs --durations=10
    step 180 bench_conv.log python benchmarks/speed/conv.py --out "$OUT"
    step 60 bench_scan.log python benchmarks/speed/scan.py
    cp benchmarks/results/scan_cuda.md "$OUT/" 2>/dev/null
    step 90 pytest_scan_triton.log python -m pytest -p no:cacheprovider tests/ops/test_scan_triton.py -q -rs
    ;;
butterfly)
    step 420 pytest_butterfly_gpu.log python -m pytest -p no:cacheprovider tests/ops/test_conv_butterfly_gpu.py -q -rs --durations=10
    step 120 pytest_butterfly.log python -m pytest -p no:cacheprovider tests/ops/test_conv_butterfly.py -q -rs -x
    ;;
native)
    step 300 native_build.log python -m seqlayers._native build
    step 120 pytest_native_gpu.log python -m pytest -p no:cacheprovider tests/ops/test_vandermonde_native_gpu.py -q -rs --durations=5
    step 120 bench_kernel_gen.log python benchmarks/speed/kernel_gen.py --device cuda --backends torch native --markdown "$OUT/kernel_gen_cuda.md"
    ;;
*)
    echo "unknown part $PART; expected triton, butterfly or native" >&2
    exit 2
    ;;
esac

echo "gpu_suite $PART exit status: $status" | tee -a "$OUT/env_$PART.log"
exit "$status"
