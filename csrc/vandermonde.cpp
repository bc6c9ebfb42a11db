// Native CPU kernels of seqlayers' vandermonde op: K[p, m, l] = 2 Re(sum_n v[p, m, n] z[m, n]^l).
//
// Positions are split into blocks of T ~ 2 sqrt(L) (64 to 512): l = q*T + r. Per row m the kernels
// build two small tables in double precision, the fine powers z^r (r < T) and the block anchors
// z^(qT) (q < L/T). Both come from repeated multiplication (vectorized across modes), re-anchored
// every ANCHOR_EVERY steps from exp(l log z) so the error does not grow with L; the fine powers are
// rounded to the working precision only at the end. Nothing of size (N, L) is ever materialized:
// the extra memory is O(threads * N * (T + L/T)).
//
// Forward, per block: K[p, m, qT + r] = sum_n a[n] Re(z_n^r) + b[n] Im(z_n^r) with
// a = 2 Re(w), b = -2 Im(w), w = v[p, m, n] z_n^(qT). The inner loop runs over r (contiguous
// output) for QB blocks at once, so every table load feeds QB fused multiply-adds.
//
// Backward (PyTorch's complex convention): with g = dLoss/dK,
//   grad_v[p, m, n] = 2 conj(sum_l g[p, m, l] z^l)
//   grad_z[m, n]    = 2 conj(sum_p v[p, m, n] sum_l l g[p, m, l] z^(l-1))
// and the second sum is sum_l g'[l] z^l with g'[l] = (l + 1) g[l + 1], so both are the same
// real-weighted power sums: per block, an inner sum over r in the working precision (vectorized over
// modes n), then one complex multiply by the anchor, accumulated in double.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__)
// One build runs on any x86-64 CPU: each tile kernel is compiled for AVX-512, for AVX2 + FMA and
// for the baseline, each with tiles of its own vector width, and the widest the CPU has is called.
#define SEQLAYERS_X86_VERSIONS 1
#endif

namespace seqlayers {
namespace {

using cdouble = std::complex<double>;

constexpr int64_t MAX_BLOCK = 512;    // longest block of positions (fine powers per mode)
constexpr int64_t ANCHOR_EVERY = 32;  // steps between exact re-anchorings of a power sequence
constexpr int64_t QB = 4;             // forward: blocks computed together

// A register tile: `Bytes` bytes of R, as a GCC/Clang vector type (a plain array elsewhere). The
// kernels keep 8 accumulator tiles and about 6 operand tiles live, so a tile is one vector
// register of the target: 64 bytes needs AVX-512's 32 registers, and on AVX2 (16 registers of 32
// bytes) 64-byte tiles would take two registers each and spill in the inner loop.
template <typename R, int64_t Bytes>
struct Tile {
  static constexpr int64_t lanes = Bytes / sizeof(R);
#if defined(__GNUC__)
  typedef R type __attribute__((vector_size(Bytes)));
#else
  struct type {
    R x[lanes];
    type& operator+=(const type& o) { for (int64_t i = 0; i < lanes; ++i) x[i] += o.x[i]; return *this; }
    friend type operator*(R a, const type& o) { type t; for (int64_t i = 0; i < lanes; ++i) t.x[i] = a * o.x[i]; return t; }
    friend type operator+(const type& a, const type& o) { type t = a; t += o; return t; }
  };
#endif
  static type load(const R* p) {
    type t;
    std::memcpy(&t, p, sizeof(t));
    return t;
  }
  static void store(R* p, const type& t) { std::memcpy(p, &t, sizeof(t)); }
  static type zero() {
    type t;
    std::memset(&t, 0, sizeof(t));
    return t;
  }
};

constexpr int64_t WIDEST_TILE = 64;  // bytes: block lengths and mode padding are multiples of two tiles

// Block length T for L positions: about 2 sqrt(L) (tables of N * T numbers per row against N * L
// of work), a power of two in [64, MAX_BLOCK], so a multiple of every tile width.
int64_t block_length(int64_t L) {
  int64_t T = 64;
  while (T < MAX_BLOCK && T * T < 4 * L) T *= 2;
  return T;
}

// Product without std::complex's operator*, whose inf/NaN recovery (__muldc3) is a slow call.
inline cdouble mul(cdouble x, cdouble y) {
  return {x.real() * y.real() - x.imag() * y.imag(), x.real() * y.imag() + x.imag() * y.real()};
}

// Powers of every mode, out_re/out_im[i * N + n] = Re/Im(z_n^(i * step)) for i < count, in double:
// repeated multiplication by z^step, vectorized across modes, re-anchored from exp(i step log z)
// every ANCHOR_EVERY steps. z = 0 gives 0^0 = 1 and 0 after.
void power_table(const cdouble* z, int64_t N, int64_t step, int64_t count, double* out_re, double* out_im,
                 std::vector<cdouble>& scratch) {
  scratch.resize(2 * N);
  cdouble* log_z = scratch.data();
  cdouble* z_step = scratch.data() + N;
  auto exact = [&](int64_t n, int64_t k) {
    if (k == 0) return cdouble(1.0, 0.0);
    return z[n] == cdouble(0.0, 0.0) ? cdouble(0.0, 0.0) : std::exp(static_cast<double>(k) * log_z[n]);
  };
  for (int64_t n = 0; n < N; ++n) {
    log_z[n] = z[n] == cdouble(0.0, 0.0) ? cdouble(0.0, 0.0) : std::log(z[n]);
    z_step[n] = exact(n, step);
  }
  for (int64_t i = 0; i < count; ++i) {
    double* re = out_re + i * N;
    double* im = out_im + i * N;
    if (i % ANCHOR_EVERY == 0) {
      for (int64_t n = 0; n < N; ++n) {
        const cdouble w = exact(n, i * step);
        re[n] = w.real();
        im[n] = w.imag();
      }
      continue;
    }
    const double* pre = re - N;
    const double* pim = im - N;
    for (int64_t n = 0; n < N; ++n) {
      const double sr = z_step[n].real(), si = z_step[n].imag();
      re[n] = pre[n] * sr - pim[n] * si;
      im[n] = pre[n] * si + pim[n] * sr;
    }
  }
}

// Per-row tables: fine powers z^r (r < T) rounded to R, and anchors z^(qT) (q < Q) in double.
template <typename R>
struct RowTables {
  int64_t N, T, Q;
  std::vector<double> fine_re, fine_im, anchor_re, anchor_im;
  std::vector<cdouble> z, scratch;

  RowTables(int64_t N, int64_t T, int64_t Q)
      : N(N), T(T), Q(Q), fine_re(T * N), fine_im(T * N), anchor_re(Q * N), anchor_im(Q * N), z(N) {}

  void build(const std::complex<R>* zrow) {
    for (int64_t n = 0; n < N; ++n) z[n] = cdouble(zrow[n]);
    power_table(z.data(), N, 1, T, fine_re.data(), fine_im.data(), scratch);
    power_table(z.data(), N, T, Q, anchor_re.data(), anchor_im.data(), scratch);
  }
  cdouble anchor(int64_t q, int64_t n) const { return {anchor_re[q * N + n], anchor_im[q * N + n]}; }

  // The fine powers rounded to R, z_n^r at re/im[r * r_stride + n * n_stride] (the tiles' layout).
  void fine_to(R* re, R* im, int64_t r_stride, int64_t n_stride) const {
    for (int64_t r = 0; r < T; ++r)
      for (int64_t n = 0; n < N; ++n) {
        re[r * r_stride + n * n_stride] = static_cast<R>(fine_re[r * N + n]);
        im[r * r_stride + n * n_stride] = static_cast<R>(fine_im[r * N + n]);
      }
  }
};

// out[qb * T + r] = sum_n a[qb][n] * re[n][r] + b[qb][n] * im[n][r] for r < T, qb < QB.
template <typename R, int64_t Bytes>
inline __attribute__((always_inline)) void forward_tile_body(const R* __restrict__ a, const R* __restrict__ b,
                                                             const R* __restrict__ re, const R* __restrict__ im,
                                                             int64_t modes, int64_t T, R* __restrict__ out) {
  using V = Tile<R, Bytes>;
  constexpr int64_t W = V::lanes;
  for (int64_t r0 = 0; r0 < T; r0 += 2 * W) {
    typename V::type acc[QB][2];
    for (auto& row : acc) row[0] = row[1] = V::zero();
    for (int64_t n = 0; n < modes; ++n) {
      const auto re0 = V::load(re + n * T + r0), re1 = V::load(re + n * T + r0 + W);
      const auto im0 = V::load(im + n * T + r0), im1 = V::load(im + n * T + r0 + W);
      for (int64_t qb = 0; qb < QB; ++qb) {
        const R an = a[qb * modes + n], bn = b[qb * modes + n];
        acc[qb][0] += an * re0 + bn * im0;
        acc[qb][1] += an * re1 + bn * im1;
      }
    }
    for (int64_t qb = 0; qb < QB; ++qb) {
      V::store(out + qb * T + r0, acc[qb][0]);
      V::store(out + qb * T + r0 + W, acc[qb][1]);
    }
  }
}

// For modes n < padded (a multiple of two of the widest tiles): s1[n] = sum_r g1[r] z_n^r and
// s2[n] = sum_r g2[r] z_n^r, complex results as (re, im) planes; the tables are laid out [r][n].
template <typename R, int64_t Bytes>
inline __attribute__((always_inline)) void backward_tile_body(
    const R* __restrict__ g1, const R* __restrict__ g2, const R* __restrict__ re, const R* __restrict__ im,
    int64_t padded, int64_t T, R* __restrict__ s1re, R* __restrict__ s1im, R* __restrict__ s2re,
    R* __restrict__ s2im) {
  using V = Tile<R, Bytes>;
  constexpr int64_t W = V::lanes;
  for (int64_t n0 = 0; n0 < padded; n0 += 2 * W) {
    typename V::type acc[4][2];
    for (auto& row : acc) row[0] = row[1] = V::zero();
    for (int64_t r = 0; r < T; ++r) {
      const R w1 = g1[r], w2 = g2[r];
      for (int64_t h = 0; h < 2; ++h) {
        const auto pr = V::load(re + r * padded + n0 + h * W);
        const auto pi = V::load(im + r * padded + n0 + h * W);
        acc[0][h] += w1 * pr;
        acc[1][h] += w1 * pi;
        acc[2][h] += w2 * pr;
        acc[3][h] += w2 * pi;
      }
    }
    for (int64_t h = 0; h < 2; ++h) {
      V::store(s1re + n0 + h * W, acc[0][h]);
      V::store(s1im + n0 + h * W, acc[1][h]);
      V::store(s2re + n0 + h * W, acc[2][h]);
      V::store(s2im + n0 + h * W, acc[3][h]);
    }
  }
}

// The tile kernels for each x86 vector unit, and the choice among them (made once per process).
#define SEQLAYERS_TILE_VERSIONS(name, params, args)                                                \
  template <typename R>                                                                            \
  __attribute__((target("avx512f"))) void name##_avx512 params { name##_body<R, 64> args; }        \
  template <typename R>                                                                            \
  __attribute__((target("avx2,fma"))) void name##_avx2 params { name##_body<R, 32> args; }         \
  template <typename R>                                                                            \
  void name##_base params { name##_body<R, 16> args; }

enum class Isa { base, avx2, avx512 };

// The widest vector unit of the CPU, or a narrower one named by $SEQLAYERS_NATIVE_ISA
// ("base", "avx2"), so that every version can be tested on one machine.
Isa vector_unit() {
#ifdef SEQLAYERS_X86_VERSIONS
  static const Isa isa = [] {
    Isa widest = __builtin_cpu_supports("avx512f")                                   ? Isa::avx512
                 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? Isa::avx2
                                                                                    : Isa::base;
    const char* asked = std::getenv("SEQLAYERS_NATIVE_ISA");
    const std::string name = asked ? asked : "";
    const Isa wanted = name == "base" ? Isa::base : name == "avx2" ? Isa::avx2 : Isa::avx512;
    return std::min(widest, wanted);
  }();
  return isa;
#else
  return Isa::base;
#endif
}

const char* vector_unit_name() {
  switch (vector_unit()) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "base";
  }
}

#ifdef SEQLAYERS_X86_VERSIONS
SEQLAYERS_TILE_VERSIONS(forward_tile,
                        (const R* a, const R* b, const R* re, const R* im, int64_t modes, int64_t T, R* out),
                        (a, b, re, im, modes, T, out))
SEQLAYERS_TILE_VERSIONS(backward_tile,
                        (const R* g1, const R* g2, const R* re, const R* im, int64_t padded, int64_t T,
                         R* s1re, R* s1im, R* s2re, R* s2im),
                        (g1, g2, re, im, padded, T, s1re, s1im, s2re, s2im))
#endif

template <typename R>
void forward_tile(const R* a, const R* b, const R* re, const R* im, int64_t modes, int64_t T, R* out) {
#ifdef SEQLAYERS_X86_VERSIONS
  switch (vector_unit()) {
    case Isa::avx512: return forward_tile_avx512<R>(a, b, re, im, modes, T, out);
    case Isa::avx2: return forward_tile_avx2<R>(a, b, re, im, modes, T, out);
    default: return forward_tile_base<R>(a, b, re, im, modes, T, out);
  }
#else
  forward_tile_body<R, 16>(a, b, re, im, modes, T, out);
#endif
}

template <typename R>
void backward_tile(const R* g1, const R* g2, const R* re, const R* im, int64_t padded, int64_t T, R* s1re,
                   R* s1im, R* s2re, R* s2im) {
#ifdef SEQLAYERS_X86_VERSIONS
  switch (vector_unit()) {
    case Isa::avx512: return backward_tile_avx512<R>(g1, g2, re, im, padded, T, s1re, s1im, s2re, s2im);
    case Isa::avx2: return backward_tile_avx2<R>(g1, g2, re, im, padded, T, s1re, s1im, s2re, s2im);
    default: return backward_tile_base<R>(g1, g2, re, im, padded, T, s1re, s1im, s2re, s2im);
  }
#else
  backward_tile_body<R, 16>(g1, g2, re, im, padded, T, s1re, s1im, s2re, s2im);
#endif
}

void check_inputs(const at::Tensor& v, const at::Tensor& z) {
  TORCH_CHECK(v.device().is_cpu() && z.device().is_cpu(), "vandermonde (native): CPU tensors expected");
  TORCH_CHECK(v.dim() == 3 && z.dim() == 2, "vandermonde (native): v (P, M, N) and z (M, N) expected, got ",
              v.sizes(), " and ", z.sizes());
  TORCH_CHECK(v.size(1) == z.size(0) && v.size(2) == z.size(1),
              "vandermonde (native): v's trailing dims must equal z's, got ", v.sizes(), " and ", z.sizes());
  TORCH_CHECK(v.scalar_type() == z.scalar_type() &&
                  (z.scalar_type() == at::kComplexFloat || z.scalar_type() == at::kComplexDouble),
              "vandermonde (native): v and z must both be complex64 or both complex128");
  TORCH_CHECK(v.is_contiguous() && z.is_contiguous(), "vandermonde (native): contiguous inputs expected");
}

template <typename R>
void forward_impl(const at::Tensor& v, const at::Tensor& z, int64_t L, at::Tensor& out) {
  const int64_t P = v.size(0), M = v.size(1), N = v.size(2);
  const int64_t T = block_length(L), Q = (L + T - 1) / T;
  const auto* vp = reinterpret_cast<const std::complex<R>*>(v.data_ptr());
  const auto* zp = reinterpret_cast<const std::complex<R>*>(z.data_ptr());
  R* op = out.data_ptr<R>();
  at::parallel_for(0, M, 1, [&](int64_t begin, int64_t end) {
    RowTables<R> tables(N, T, Q);
    std::vector<R> re(N * T), im(N * T), a(QB * N), b(QB * N), tile(QB * T);
    for (int64_t m = begin; m < end; ++m) {
      tables.build(zp + m * N);
      tables.fine_to(re.data(), im.data(), 1, T);  // [n][r]: tiles over positions r
      for (int64_t p = 0; p < P; ++p) {
        const std::complex<R>* vrow = vp + (p * M + m) * N;
        R* orow = op + (p * M + m) * L;
        for (int64_t q0 = 0; q0 < Q; q0 += QB) {
          for (int64_t qb = 0; qb < QB; ++qb) {
            for (int64_t n = 0; n < N; ++n) {
              const cdouble w = (q0 + qb < Q) ? mul(cdouble(vrow[n]), tables.anchor(q0 + qb, n)) : 0.0;
              a[qb * N + n] = static_cast<R>(2.0 * w.real());
              b[qb * N + n] = static_cast<R>(-2.0 * w.imag());
            }
          }
          const int64_t first = q0 * T, count = std::min(QB * T, L - first);
          if (count == QB * T) {
            forward_tile<R>(a.data(), b.data(), re.data(), im.data(), N, T, orow + first);
          } else {
            forward_tile<R>(a.data(), b.data(), re.data(), im.data(), N, T, tile.data());
            std::copy(tile.begin(), tile.begin() + count, orow + first);
          }
        }
      }
    }
  });
}

template <typename R>
void backward_impl(const at::Tensor& v, const at::Tensor& z, const at::Tensor& grad, bool need_v,
                   bool need_z, at::Tensor& grad_v, at::Tensor& grad_z) {
  const int64_t P = v.size(0), M = v.size(1), N = v.size(2), L = grad.size(2);
  const int64_t T = block_length(L), Q = (L + T - 1) / T;
  const int64_t block = 2 * WIDEST_TILE / static_cast<int64_t>(sizeof(R));
  const int64_t padded = (N + block - 1) / block * block;
  const auto* vp = reinterpret_cast<const std::complex<R>*>(v.data_ptr());
  const auto* zp = reinterpret_cast<const std::complex<R>*>(z.data_ptr());
  const R* gp = grad.data_ptr<R>();
  auto* gvp = need_v ? reinterpret_cast<std::complex<R>*>(grad_v.data_ptr()) : nullptr;
  auto* gzp = need_z ? reinterpret_cast<std::complex<R>*>(grad_z.data_ptr()) : nullptr;
  at::parallel_for(0, M, 1, [&](int64_t begin, int64_t end) {
    RowTables<R> tables(N, T, Q);
    std::vector<cdouble> sum_g(N), sum_lg(N), total_z(N);
    std::vector<R> re(T * padded, R(0)), im(T * padded, R(0)), g1(T), g2(T);
    std::vector<R> s1re(padded), s1im(padded), s2re(padded), s2im(padded);
    for (int64_t m = begin; m < end; ++m) {
      tables.build(zp + m * N);
      tables.fine_to(re.data(), im.data(), padded, 1);  // [r][padded]: tiles over modes n
      std::fill(total_z.begin(), total_z.end(), cdouble(0.0, 0.0));
      for (int64_t p = 0; p < P; ++p) {
        const R* grow = gp + (p * M + m) * L;
        std::fill(sum_g.begin(), sum_g.end(), cdouble(0.0, 0.0));
        std::fill(sum_lg.begin(), sum_lg.end(), cdouble(0.0, 0.0));
        for (int64_t q = 0; q < Q; ++q) {
          const int64_t first = q * T;
          const int64_t valid = std::min(T, L - first);  // g1 from grow[first:], g2 shifted by one
          std::copy(grow + first, grow + first + valid, g1.begin());
          std::fill(g1.begin() + valid, g1.end(), R(0));
          const int64_t shifted = std::min(T, L - first - 1);
          for (int64_t r = 0; r < shifted; ++r) g2[r] = static_cast<R>(first + r + 1) * grow[first + r + 1];
          std::fill(g2.begin() + std::max<int64_t>(shifted, 0), g2.end(), R(0));
          backward_tile<R>(g1.data(), g2.data(), re.data(), im.data(), padded, T, s1re.data(),
                           s1im.data(), s2re.data(), s2im.data());
          for (int64_t n = 0; n < N; ++n) {
            const cdouble anchor = tables.anchor(q, n);
            sum_g[n] += mul(anchor, cdouble(s1re[n], s1im[n]));
            sum_lg[n] += mul(anchor, cdouble(s2re[n], s2im[n]));
          }
        }
        const std::complex<R>* vrow = vp + (p * M + m) * N;
        for (int64_t n = 0; n < N; ++n) {
          if (need_v) gvp[(p * M + m) * N + n] = std::complex<R>(2.0 * std::conj(sum_g[n]));
          total_z[n] += mul(cdouble(vrow[n]), sum_lg[n]);
        }
      }
      if (need_z)
        for (int64_t n = 0; n < N; ++n) gzp[m * N + n] = std::complex<R>(2.0 * std::conj(total_z[n]));
    }
  });
}

at::Tensor vandermonde_forward(const at::Tensor& v, const at::Tensor& z, int64_t L) {
  check_inputs(v, z);
  TORCH_CHECK(L >= 1, "vandermonde (native): L must be >= 1, got ", L);
  const bool single = z.scalar_type() == at::kComplexFloat;
  at::Tensor out = at::empty({v.size(0), v.size(1), L}, v.options().dtype(single ? at::kFloat : at::kDouble));
  if (single)
    forward_impl<float>(v, z, L, out);
  else
    forward_impl<double>(v, z, L, out);
  return out;
}

std::tuple<at::Tensor, at::Tensor> vandermonde_backward(const at::Tensor& v, const at::Tensor& z,
                                                        const at::Tensor& grad, bool need_v,
                                                        bool need_z) {
  check_inputs(v, z);
  const bool single = z.scalar_type() == at::kComplexFloat;
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == v.size(0) && grad.size(1) == v.size(1) &&
                  grad.is_contiguous() && grad.scalar_type() == (single ? at::kFloat : at::kDouble),
              "vandermonde (native): contiguous real grad of shape (P, M, L) expected, got ", grad.sizes());
  at::Tensor grad_v = need_v ? at::empty(v.sizes(), v.options()) : at::Tensor();
  at::Tensor grad_z = need_z ? at::empty(z.sizes(), z.options()) : at::Tensor();
  if (single)
    backward_impl<float>(v, z, grad, need_v, need_z, grad_v, grad_z);
  else
    backward_impl<double>(v, z, grad, need_v, need_z, grad_v, grad_z);
  return {grad_v, grad_z};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(seqlayers, m) {
  m.def("native_vandermonde_forward(Tensor v, Tensor z, int L) -> Tensor");
  m.def("native_vector_unit() -> str");
  m.def(
      "native_vandermonde_backward(Tensor v, Tensor z, Tensor grad, bool need_v, bool need_z)"
      " -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(seqlayers, CatchAll, m) {
  m.impl("native_vector_unit", []() { return std::string(vector_unit_name()); });
}

TORCH_LIBRARY_IMPL(seqlayers, CPU, m) {
  m.impl("native_vandermonde_forward", &vandermonde_forward);
  m.impl("native_vandermonde_backward", &vandermonde_backward);
}

}  // namespace seqlayers
