// CUDA kernels of seqlayers' vandermonde op: K[p, m, l] = 2 Re(sum_n v[p, m, n] z[m, n]^l).
//
// Built only when the extension is built with CUDA (see seqlayers/_native.py); the op schemas are
// defined by csrc/vandermonde.cpp, this file adds the CUDA implementations.
//
// A block of THREADS threads covers SPAN = THREADS * STEPS consecutive positions of one (p, m) row;
// thread t owns l = base + t + j * THREADS for j < STEPS, so every load and store of a step is
// coalesced. Per mode, the thread's first power z^(base + t) and the stride z^THREADS come from
// exp(l log z) in double precision (the phase l * Im(log z) is reduced in double, so nothing
// drifts with L), then STEPS complex multiplications in fp32 walk the thread's positions.
// Modes are staged in shared memory in chunks (v, log z and the stride, in double).
//
// Backward (PyTorch's complex convention), with g = dLoss/dK and g'[l] = (l + 1) g[l + 1]:
//   grad_v[p, m, n] = 2 conj(sum_l g[l] z^l),  grad_z[m, n] = 2 conj(sum_p v[p, m, n] sum_l g'[l] z^l).
// Each block reduces its span into per-block partial sums (double), summed over blocks on the host.

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/view_as_complex.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

namespace seqlayers {
namespace {

constexpr int THREADS = 128;
constexpr int STEPS = 16;
constexpr int SPAN = THREADS * STEPS;
constexpr int MODE_CHUNK = 128;  // modes staged in shared memory at a time

struct Mode {
  double log_re, log_im;    // log z
  double step_re, step_im;  // z^THREADS
  double v_re, v_im;        // v (forward) or unused
};

// z^k = exp(k log z) in double; z = 0 gives 0^0 = 1 and 0 otherwise.
__device__ inline void power(const Mode& mode, bool zero, long long k, double& re, double& im) {
  if (k == 0) {
    re = 1.0, im = 0.0;
    return;
  }
  if (zero) {
    re = 0.0, im = 0.0;
    return;
  }
  const double mag = exp(static_cast<double>(k) * mode.log_re);
  double s, c;
  sincos(static_cast<double>(k) * mode.log_im, &s, &c);
  re = mag * c, im = mag * s;
}

template <typename R>
__device__ inline void stage(const R* __restrict__ z, const R* __restrict__ v, int N, int n0,
                             Mode* modes, bool* zeros) {
  for (int i = threadIdx.x; i < MODE_CHUNK && n0 + i < N; i += THREADS) {
    const double zr = z[2 * (n0 + i)], zi = z[2 * (n0 + i) + 1];
    Mode mode{};
    zeros[i] = zr == 0.0 && zi == 0.0;
    if (!zeros[i]) {
      mode.log_re = 0.5 * log(zr * zr + zi * zi);
      mode.log_im = atan2(zi, zr);
    }
    power(mode, zeros[i], THREADS, mode.step_re, mode.step_im);
    if (v != nullptr) mode.v_re = v[2 * (n0 + i)], mode.v_im = v[2 * (n0 + i) + 1];
    modes[i] = mode;
  }
}

// grid (blocks over L, M, P); z, v as interleaved (re, im) pairs; out (P, M, L).
template <typename R>
__global__ void forward_kernel(const R* __restrict__ v, const R* __restrict__ z, R* __restrict__ out,
                               int M, int N, long long L) {
  __shared__ Mode modes[MODE_CHUNK];
  __shared__ bool zeros[MODE_CHUNK];
  const int m = blockIdx.y, p = blockIdx.z;
  const long long first = static_cast<long long>(blockIdx.x) * SPAN + threadIdx.x;
  const R* vrow = v + 2 * (static_cast<long long>(p) * M + m) * N;
  R acc[STEPS];
#pragma unroll
  for (int j = 0; j < STEPS; ++j) acc[j] = R(0);
  for (int n0 = 0; n0 < N; n0 += MODE_CHUNK) {
    __syncthreads();
    stage(z + 2 * static_cast<long long>(m) * N, vrow, N, n0, modes, zeros);
    __syncthreads();
    const int count = min(MODE_CHUNK, N - n0);
    for (int i = 0; i < count; ++i) {
      const Mode& mode = modes[i];
      double pr, pi;
      power(mode, zeros[i], first, pr, pi);
      // w = 2 v z^first, walked by z^THREADS
      R wr = static_cast<R>(2.0 * (mode.v_re * pr - mode.v_im * pi));
      R wi = static_cast<R>(2.0 * (mode.v_re * pi + mode.v_im * pr));
      const R sr = static_cast<R>(mode.step_re), si = static_cast<R>(mode.step_im);
#pragma unroll
      for (int j = 0; j < STEPS; ++j) {
        acc[j] += wr;
        const R t = wr * sr - wi * si;
        wi = wr * si + wi * sr;
        wr = t;
      }
    }
  }
  R* orow = out + (static_cast<long long>(p) * M + m) * L;
#pragma unroll
  for (int j = 0; j < STEPS; ++j) {
    const long long l = first + static_cast<long long>(j) * THREADS;
    if (l < L) orow[l] = acc[j];
  }
}

__device__ inline double block_sum(double x, double* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_down_sync(0xffffffffu, x, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0)
    for (int w = 0; w < THREADS / 32; ++w) total += scratch[w];
  return total;  // valid in thread 0
}

// grid (blocks over L, M, P); partial (P, M, blocks, N, 4): sum g z^l (re, im), sum g' z^l (re, im).
template <typename R>
__global__ void backward_kernel(const R* __restrict__ z, const R* __restrict__ grad,
                                double* __restrict__ partial, int M, int N, long long L) {
  __shared__ Mode modes[MODE_CHUNK];
  __shared__ bool zeros[MODE_CHUNK];
  __shared__ double scratch[THREADS / 32];
  const int m = blockIdx.y, p = blockIdx.z;
  const long long first = static_cast<long long>(blockIdx.x) * SPAN + threadIdx.x;
  const R* grow = grad + (static_cast<long long>(p) * M + m) * L;
  R g[STEPS], gs[STEPS];
#pragma unroll
  for (int j = 0; j < STEPS; ++j) {
    const long long l = first + static_cast<long long>(j) * THREADS;
    g[j] = l < L ? grow[l] : R(0);
    gs[j] = l + 1 < L ? static_cast<R>(l + 1) * grow[l + 1] : R(0);
  }
  double* out = partial + ((static_cast<long long>(p) * M + m) * gridDim.x + blockIdx.x) * N * 4;
  for (int n0 = 0; n0 < N; n0 += MODE_CHUNK) {
    __syncthreads();
    stage<R>(z + 2 * static_cast<long long>(m) * N, nullptr, N, n0, modes, zeros);
    __syncthreads();
    const int count = min(MODE_CHUNK, N - n0);
    for (int i = 0; i < count; ++i) {
      const Mode& mode = modes[i];
      double pr, pi;
      power(mode, zeros[i], first, pr, pi);
      R wr = static_cast<R>(pr), wi = static_cast<R>(pi);
      const R sr = static_cast<R>(mode.step_re), si = static_cast<R>(mode.step_im);
      R a_re = 0, a_im = 0, c_re = 0, c_im = 0;
#pragma unroll
      for (int j = 0; j < STEPS; ++j) {
        a_re += g[j] * wr;
        a_im += g[j] * wi;
        c_re += gs[j] * wr;
        c_im += gs[j] * wi;
        const R t = wr * sr - wi * si;
        wi = wr * si + wi * sr;
        wr = t;
      }
      const double sums[4] = {a_re, a_im, c_re, c_im};
      for (int k = 0; k < 4; ++k) {
        const double total = block_sum(sums[k], scratch);
        if (threadIdx.x == 0) out[(n0 + i) * 4 + k] = total;
      }
    }
  }
}

void check_cuda_inputs(const at::Tensor& v, const at::Tensor& z) {
  TORCH_CHECK(v.is_cuda() && z.is_cuda() && v.device() == z.device(),
              "vandermonde (native CUDA): v and z must be on the same CUDA device");
  TORCH_CHECK(v.dim() == 3 && z.dim() == 2 && v.size(1) == z.size(0) && v.size(2) == z.size(1),
              "vandermonde (native CUDA): v (P, M, N) and z (M, N) expected, got ", v.sizes(), " and ",
              z.sizes());
  TORCH_CHECK(v.scalar_type() == z.scalar_type() &&
                  (z.scalar_type() == at::kComplexFloat || z.scalar_type() == at::kComplexDouble),
              "vandermonde (native CUDA): v and z must both be complex64 or both complex128");
  TORCH_CHECK(v.is_contiguous() && z.is_contiguous(), "vandermonde (native CUDA): contiguous inputs expected");
  TORCH_CHECK(v.size(1) <= 65535 && v.size(0) <= 65535, "vandermonde (native CUDA): at most 65535 rows and channels");
}

dim3 grid_of(const at::Tensor& v, int64_t L) {
  return dim3(static_cast<unsigned>((L + SPAN - 1) / SPAN), static_cast<unsigned>(v.size(1)),
              static_cast<unsigned>(v.size(0)));
}

at::Tensor vandermonde_forward_cuda(const at::Tensor& v, const at::Tensor& z, int64_t L) {
  check_cuda_inputs(v, z);
  TORCH_CHECK(L >= 1, "vandermonde (native CUDA): L must be >= 1, got ", L);
  const c10::cuda::CUDAGuard guard(v.device());
  const bool single = z.scalar_type() == at::kComplexFloat;
  at::Tensor out = at::empty({v.size(0), v.size(1), L}, v.options().dtype(single ? at::kFloat : at::kDouble));
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int M = static_cast<int>(v.size(1)), N = static_cast<int>(v.size(2));
  if (single)
    forward_kernel<float><<<grid_of(v, L), THREADS, 0, stream>>>(
        reinterpret_cast<const float*>(v.data_ptr()), reinterpret_cast<const float*>(z.data_ptr()),
        out.data_ptr<float>(), M, N, L);
  else
    forward_kernel<double><<<grid_of(v, L), THREADS, 0, stream>>>(
        reinterpret_cast<const double*>(v.data_ptr()), reinterpret_cast<const double*>(z.data_ptr()),
        out.data_ptr<double>(), M, N, L);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> vandermonde_backward_cuda(const at::Tensor& v, const at::Tensor& z,
                                                             const at::Tensor& grad, bool need_v,
                                                             bool need_z) {
  check_cuda_inputs(v, z);
  const bool single = z.scalar_type() == at::kComplexFloat;
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == v.size(0) && grad.size(1) == v.size(1) &&
                  grad.is_contiguous() && grad.scalar_type() == (single ? at::kFloat : at::kDouble),
              "vandermonde (native CUDA): contiguous real grad of shape (P, M, L) expected, got ", grad.sizes());
  const c10::cuda::CUDAGuard guard(v.device());
  const int64_t L = grad.size(2);
  const dim3 grid = grid_of(v, L);
  const int M = static_cast<int>(v.size(1)), N = static_cast<int>(v.size(2));
  at::Tensor partial = at::empty({v.size(0), v.size(1), static_cast<int64_t>(grid.x), N, 4},
                                 v.options().dtype(at::kDouble));
  const auto stream = c10::cuda::getCurrentCUDAStream();
  if (single)
    backward_kernel<float><<<grid, THREADS, 0, stream>>>(
        reinterpret_cast<const float*>(z.data_ptr()), grad.data_ptr<float>(), partial.data_ptr<double>(), M, N, L);
  else
    backward_kernel<double><<<grid, THREADS, 0, stream>>>(
        reinterpret_cast<const double*>(z.data_ptr()), grad.data_ptr<double>(), partial.data_ptr<double>(), M, N, L);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const at::Tensor sums = at::view_as_complex(partial.sum(2).view({v.size(0), M, N, 2, 2}));
  // sums[..., 0] = sum_l g z^l, sums[..., 1] = sum_l g' z^l  (complex128)
  at::Tensor grad_v, grad_z;
  if (need_v) grad_v = sums.select(-1, 0).conj().mul(2).to(v.scalar_type()).resolve_conj();
  if (need_z)
    grad_z = v.to(at::kComplexDouble).mul(sums.select(-1, 1)).sum(0).conj().mul(2).to(z.scalar_type()).resolve_conj();
  return {grad_v, grad_z};
}

}  // namespace

TORCH_LIBRARY_IMPL(seqlayers, CUDA, m) {
  m.impl("native_vandermonde_forward", &vandermonde_forward_cuda);
  m.impl("native_vandermonde_backward", &vandermonde_backward_cuda);
}

}  // namespace seqlayers
