// Native CPU kernels of seqlayers' linear_scan: h_t = a_t * h_{t-1} + b_t over (B, L, P).
//
// Both kernels make one pass over memory. The work is split into tasks of (batch row, block of
// states); a task walks the sequence position by position (the outer loop) and updates its block
// of contiguous states in an inner loop that the compiler vectorizes. Tasks run in parallel with
// at::parallel_for. Complex tensors are read as interleaved (real, imag) pairs and multiplied by
// hand (no std::complex, whose operator* handles NaN/inf specially and does not vectorize).
//
// Backward (PyTorch's complex convention, G = dL/dRe h + i dL/dIm h): the adjoint
// lam_t = G_t + conj(a_{t+1}) lam_{t+1} is the same recurrence run from the end on the shifted,
// conjugated decays; the same pass writes grad_b = lam, grad_a_t = lam_t conj(h_{t-1}) and
// grad_h0 = conj(a_0) lam_0.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace seqlayers {
namespace {

// out = x * y + add over n states; Complex: interleaved pairs.
template <typename R, bool Complex>
inline void mul_add(const R* __restrict__ x, const R* __restrict__ y, const R* __restrict__ add,
                    R* __restrict__ out, int64_t n) {
  if constexpr (Complex) {
    for (int64_t i = 0; i < n; ++i) {
      const R xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
      out[2 * i] = xr * yr - xi * yi + add[2 * i];
      out[2 * i + 1] = xr * yi + xi * yr + add[2 * i + 1];
    }
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * y[i] + add[i];
  }
}

// out = x * conj(y) + add over n states.
template <typename R, bool Complex>
inline void mul_conj_add(const R* __restrict__ x, const R* __restrict__ y,
                         const R* __restrict__ add, R* __restrict__ out, int64_t n) {
  if constexpr (Complex) {
    for (int64_t i = 0; i < n; ++i) {
      const R xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
      out[2 * i] = xr * yr + xi * yi + add[2 * i];
      out[2 * i + 1] = xi * yr - xr * yi + add[2 * i + 1];
    }
  } else {
    mul_add<R, false>(x, y, add, out, n);
  }
}

// out = x * conj(y) over n states.
template <typename R, bool Complex>
inline void mul_conj(const R* __restrict__ x, const R* __restrict__ y, R* __restrict__ out,
                     int64_t n) {
  if constexpr (Complex) {
    for (int64_t i = 0; i < n; ++i) {
      const R xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
      out[2 * i] = xr * yr + xi * yi;
      out[2 * i + 1] = xi * yr - xr * yi;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * y[i];
  }
}

// A (B, L, P) tensor whose states are contiguous, addressed in real scalars.
template <typename R>
struct Rows {
  R* data;
  int64_t batch_stride;
  int64_t time_stride;
  int64_t width;  // real scalars per state: 1, or 2 for complex

  Rows(const at::Tensor& t, int64_t width)
      : data(static_cast<R*>(t.data_ptr())),
        batch_stride(t.stride(0) * width),
        time_stride(t.stride(1) * width),
        width(width) {}

  R* at(int64_t batch, int64_t time, int64_t state) const {
    return data + batch * batch_stride + time * time_stride + state * width;
  }
};

// Runs body(batch, first_state, num_states) for every task, in parallel.
template <typename Body>
void for_each_block(int64_t B, int64_t P, const Body& body) {
  // Whole rows stream best; split rows only when there are fewer rows than threads.
  const int64_t threads = at::get_num_threads();
  const int64_t splits = B >= threads ? 1 : std::min((threads + B - 1) / B, (P + 15) / 16);
  const int64_t block = (P + splits - 1) / splits;
  at::parallel_for(0, B * splits, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t first = (task % splits) * block;
      if (first < P) body(task / splits, first, std::min(block, P - first));
    }
  });
}

template <typename R, bool Complex>
void scan_forward(const at::Tensor& a, const at::Tensor& b, const at::Tensor* h0, at::Tensor& h) {
  const int64_t B = a.size(0), L = a.size(1), P = a.size(2), w = Complex ? 2 : 1;
  const Rows<R> ra(a, w), rb(b, w), rh(h, w);
  const R* h0_data = h0 ? static_cast<const R*>(h0->data_ptr()) : nullptr;
  for_each_block(B, P, [&](int64_t n, int64_t p, int64_t count) {
    const R* prev = h0_data ? h0_data + (n * P + p) * w : nullptr;
    for (int64_t t = 0; t < L; ++t) {
      R* out = rh.at(n, t, p);
      if (prev) {
        mul_add<R, Complex>(ra.at(n, t, p), prev, rb.at(n, t, p), out, count);
      } else {
        std::memcpy(out, rb.at(n, t, p), count * w * sizeof(R));
      }
      prev = out;
    }
  });
}

template <typename R, bool Complex>
void scan_backward(const at::Tensor& a, const at::Tensor& h, const at::Tensor* h0,
                   const at::Tensor& grad_h, at::Tensor* grad_a, at::Tensor& grad_b,
                   at::Tensor* grad_h0) {
  const int64_t B = a.size(0), L = a.size(1), P = a.size(2), w = Complex ? 2 : 1;
  const Rows<R> ra(a, w), rh(h, w), rg(grad_h, w), rlam(grad_b, w);
  const std::optional<Rows<R>> rga = grad_a ? std::optional<Rows<R>>(Rows<R>(*grad_a, w)) : std::nullopt;
  const R* h0_data = h0 ? static_cast<const R*>(h0->data_ptr()) : nullptr;
  for_each_block(B, P, [&](int64_t n, int64_t p, int64_t count) {
    const R* later = nullptr;  // lam_{t+1}
    for (int64_t t = L - 1; t >= 0; --t) {
      R* lam = rlam.at(n, t, p);
      if (later) {
        mul_conj_add<R, Complex>(later, ra.at(n, t + 1, p), rg.at(n, t, p), lam, count);
      } else {
        std::memcpy(lam, rg.at(n, t, p), count * w * sizeof(R));
      }
      if (rga) {
        R* out = rga->at(n, t, p);
        const R* before = t > 0 ? rh.at(n, t - 1, p) : (h0_data ? h0_data + (n * P + p) * w : nullptr);
        if (before) {
          mul_conj<R, Complex>(lam, before, out, count);
        } else {
          std::fill(out, out + count * w, R(0));
        }
      }
      later = lam;
    }
    if (grad_h0) {
      R* out = static_cast<R*>(grad_h0->data_ptr()) + (n * P + p) * w;
      mul_conj<R, Complex>(later, ra.at(n, 0, p), out, count);
    }
  });
}

// The real scalar type and complexness of a dtype, passed to generic lambdas.
template <typename R, bool C>
struct Kind {
  using Real = R;
  static constexpr bool complex = C;
};

// Calls fn(Kind<R, Complex>{}) for the dtype of t.
template <typename Fn>
void dispatch_dtype(const at::Tensor& t, const Fn& fn) {
  switch (t.scalar_type()) {
    case at::kFloat: return fn(Kind<float, false>{});
    case at::kDouble: return fn(Kind<double, false>{});
    case at::kComplexFloat: return fn(Kind<float, true>{});
    case at::kComplexDouble: return fn(Kind<double, true>{});
    default: TORCH_CHECK(false, "linear_scan (native): unsupported dtype ", t.scalar_type());
  }
}

void check_sequence(const at::Tensor& t, const at::Tensor& a, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "linear_scan (native): ", name, " must be a CPU tensor");
  TORCH_CHECK(t.dim() == 3 && t.sizes() == a.sizes(), "linear_scan (native): ", name,
              " must have shape ", a.sizes(), ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == a.scalar_type(), "linear_scan (native): ", name,
              " must have dtype ", a.scalar_type(), ", got ", t.scalar_type());
  TORCH_CHECK(t.stride(2) == 1 || t.size(2) == 1, "linear_scan (native): ", name,
              " must have contiguous states (stride 1 on the last dim)");
  TORCH_CHECK(!t.is_conj() && !t.is_neg(), "linear_scan (native): ", name,
              " must not be a lazy conj/neg view");
}

void check_initial(const c10::optional<at::Tensor>& h0, const at::Tensor& a) {
  if (!h0) return;
  TORCH_CHECK(h0->sizes() == at::IntArrayRef({a.size(0), a.size(2)}) && h0->is_contiguous() &&
                  h0->scalar_type() == a.scalar_type() && h0->device().is_cpu() &&
                  !h0->is_conj() && !h0->is_neg(),
              "linear_scan (native): h0 must be a contiguous CPU (B, P) tensor of a's dtype");
}

at::Tensor linear_scan_forward(const at::Tensor& a, const at::Tensor& b,
                               const c10::optional<at::Tensor>& h0) {
  check_sequence(a, a, "a");
  check_sequence(b, a, "b");
  check_initial(h0, a);
  at::Tensor h = at::empty(a.sizes(), a.options());
  dispatch_dtype(a, [&](auto kind) {
    using K = decltype(kind);
    scan_forward<typename K::Real, K::complex>(a, b, h0 ? &*h0 : nullptr, h);
  });
  return h;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_scan_backward(
    const at::Tensor& a, const at::Tensor& h, const c10::optional<at::Tensor>& h0,
    const at::Tensor& grad_h, bool need_grad_a) {
  check_sequence(a, a, "a");
  check_sequence(h, a, "h");
  check_sequence(grad_h, a, "grad_h");
  check_initial(h0, a);
  // Gradients not asked for are returned empty (numel 0).
  at::Tensor grad_a = at::empty(need_grad_a ? a.sizes() : at::IntArrayRef({0}), a.options());
  at::Tensor grad_b = at::empty(a.sizes(), a.options());
  at::Tensor grad_h0 =
      at::empty(h0 ? at::IntArrayRef({a.size(0), a.size(2)}) : at::IntArrayRef({0}), a.options());
  dispatch_dtype(a, [&](auto kind) {
    using K = decltype(kind);
    scan_backward<typename K::Real, K::complex>(a, h, h0 ? &*h0 : nullptr, grad_h,
                                                need_grad_a ? &grad_a : nullptr, grad_b,
                                                h0 ? &grad_h0 : nullptr);
  });
  return {grad_a, grad_b, grad_h0};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(seqlayers, m) {
  m.def("native_linear_scan_forward(Tensor a, Tensor b, Tensor? h0) -> Tensor");
  m.def(
      "native_linear_scan_backward(Tensor a, Tensor h, Tensor? h0, Tensor grad_h, bool need_grad_a)"
      " -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(seqlayers, CPU, m) {
  m.impl("native_linear_scan_forward", &linear_scan_forward);
  m.impl("native_linear_scan_backward", &linear_scan_backward);
}

}  // namespace seqlayers
