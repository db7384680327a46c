// Fused multi-step IF / LIF / ParametricLIF for the CPU: one pass over [T, N] per direction.
//
// Elementwise along N (parallel, vectorisable), sequential along T. Arithmetic is written in the same order as
// the PyTorch reference (neurons/kernels/reference.py) and compiled without FP contraction, so spikes are
// bitwise equal to the reference. State and arithmetic are float32; x may be float32 only (the Python side
// converts other dtypes).
//
// The integer codes of leaks, resets and surrogates are not written here: neurons/kernels/cpu.py passes them as
// -D flags generated from the tables in neurons/functional.py (LEAKS, RESETS) and neurons/surrogate.py
// (KERNEL_SURROGATES), the same tables the Triton kernels and the Python side read.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

#if !defined(SNN_LEAK_NONE) || !defined(SNN_RESET_HARD) || !defined(SNN_SG_SIGMOID)
#error "build through neurons/kernels/cpu.py: it defines the SNN_* codes from the Python tables"
#endif
enum Leak { LEAK_NONE = SNN_LEAK_NONE, LEAK_DIV = SNN_LEAK_DIV, LEAK_MUL = SNN_LEAK_MUL };
enum Reset { RESET_HARD = SNN_RESET_HARD, RESET_SOFT = SNN_RESET_SOFT, RESET_NONE = SNN_RESET_NONE };

inline float surrogate_grad(float x, int id, float a) {
  switch (id) {
    case SNN_SG_SIGMOID: {  // sigmoid
      float sg = 1.0f / (1.0f + std::exp(-a * x));
      return a * sg * (1.0f - sg);
    }
    case SNN_SG_ATAN: {  // atan
      float t = static_cast<float>(M_PI) / 2.0f * a * x;
      return a / 2.0f / (1.0f + t * t);
    }
    case SNN_SG_FAST_SIGMOID: {  // fast sigmoid
      float d = a * std::fabs(x) + 1.0f;
      return 1.0f / (d * d);
    }
    case SNN_SG_TRIANGLE:  // triangle
      return std::max(0.0f, 1.0f - a * std::fabs(x));
    case SNN_SG_PIECEWISE_QUADRATIC:  // piecewise quadratic
      return std::max(0.0f, a - a * a * std::fabs(x));
    case SNN_SG_RECTANGULAR:  // rectangular
      return std::fabs(x) < 0.5f / a ? a : 0.0f;
    case SNN_SG_ERF:  // erf
      return a / std::sqrt(static_cast<float>(M_PI)) * std::exp(-(a * x) * (a * x));
  }
  return 0.0f;
}

// out[i] = surrogate'(h[i] - th) for a tile; the switch sits outside the loops so that each loop vectorises
template <typename F>
inline void map_tile(const float* h, float th, int64_t n, float* out, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = f(h[i] - th);
}

inline void surrogate_grad_tile(const float* h, float th, int64_t n, int id, float a, float* out) {
  switch (id) {
#define SNN_TILE_CASE(ID) \
    case ID: map_tile(h, th, n, out, [a](float x) { return surrogate_grad(x, ID, a); }); break;
    SNN_TILE_CASE(SNN_SG_SIGMOID)
    SNN_TILE_CASE(SNN_SG_ATAN)
    SNN_TILE_CASE(SNN_SG_FAST_SIGMOID)
    SNN_TILE_CASE(SNN_SG_TRIANGLE)
    SNN_TILE_CASE(SNN_SG_PIECEWISE_QUADRATIC)
    SNN_TILE_CASE(SNN_SG_RECTANGULAR)
    SNN_TILE_CASE(SNN_SG_ERF)
#undef SNN_TILE_CASE
    default: TORCH_CHECK(false, "if_family: unknown surrogate code ", id);
  }
}

template <int LEAK, bool DECAY_INPUT>
inline float charge(float x, float v, float tau, float k, float vr) {
  if (LEAK == LEAK_NONE) return v + x;
  if (LEAK == LEAK_DIV) return DECAY_INPUT ? v + (x - (v - vr)) / tau : v - (v - vr) / tau + x;
  return DECAY_INPUT ? v + (x - (v - vr)) * k : v - (v - vr) * k + x;
}

template <int RESET>
inline float reset_v(float h, float s, float th, float vr) {
  // selects, not s * vr + (1 - s) * h: the same values for s in {0, 1} (up to the sign of a zero membrane),
  // and GCC vectorises them
  if (RESET == RESET_HARD) return s != 0.0f ? vr : h;
  if (RESET == RESET_SOFT) return s != 0.0f ? h - th : h;
  return h;
}

// Neurons are processed in tiles of TILE so that the state of a tile stays in L1 across all T steps.
constexpr int64_t TILE = 4096;

// One step of one tile: restrict pointers and by-value scalars let the compiler vectorise the loop.
template <int LEAK, bool DECAY_INPUT, int RESET>
inline void forward_tile(const float* __restrict__ x, float* __restrict__ v, float* __restrict__ s,
                         float* __restrict__ h_out, int64_t n, const float tau, const float k, const float th,
                         const float vr) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float h = charge<LEAK, DECAY_INPUT>(x[i], v[i], tau, k, vr);
    const float spike = static_cast<float>(h - th >= 0.0f);  // branch-free so the loop vectorises
    h_out[i] = h;
    s[i] = spike;
    v[i] = reset_v<RESET>(h, spike, th, vr);
  }
}

template <int LEAK, bool DECAY_INPUT, int RESET>
void forward_impl(const float* x, float* v, float* s, float* h_seq, int64_t T, int64_t N, float tau, float k,
                  float th, float vr) {
  at::parallel_for(0, (N + TILE - 1) / TILE, 1, [=](int64_t tile_begin, int64_t tile_end) {
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t begin = tile * TILE, n = std::min(N, begin + TILE) - begin;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t o = t * N + begin;
        forward_tile<LEAK, DECAY_INPUT, RESET>(x + o, v + begin, s + o, h_seq + o, n, tau, k, th, vr);
      }
    }
  });
}

// One step of the backward for one tile. gv holds dL/dv_t on entry and dL/dv_{t-1} on exit.
template <int LEAK, bool DECAY_INPUT, int RESET>
inline void backward_tile(const float* __restrict__ h, const float* __restrict__ gs, const float* __restrict__ sg,
                          const float* __restrict__ x, const float* __restrict__ v_prev, float* __restrict__ gx,
                          float* __restrict__ gv, float* __restrict__ gk, int64_t n, const float th, const float vr,
                          const float ds, const float dh_dv, const float dh_dx) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float hh = h[i];
    const bool spike = hh - th >= 0.0f;
    float dr_dh = 1.0f, dr_ds = 0.0f;  // d(reset)/dh and d(reset)/ds
    if (RESET == RESET_HARD) {
      dr_dh = spike ? 0.0f : 1.0f;
      dr_ds = vr - hh;
    } else if (RESET == RESET_SOFT) {
      dr_ds = -th;
    }
    const float g = gv[i];
    const float gh = gs[i] * sg[i] + g * dr_dh + ds * g * dr_ds * sg[i];
    gx[i] = gh * dh_dx;
    if (LEAK == LEAK_MUL) gk[i] += DECAY_INPUT ? gh * (x[i] - (v_prev[i] - vr)) : -gh * (v_prev[i] - vr);
    gv[i] = gh * dh_dv;
  }
}

template <int LEAK, bool DECAY_INPUT, int RESET>
void backward_impl(const float* grad_s, const float* grad_v_last, const float* h_seq, const float* x,
                   const float* v0, float* grad_x, float* grad_v0, float* grad_k_part, int64_t T, int64_t N,
                   float k, float th, float vr, int sg_id, float alpha, bool detach_reset) {
  const float dh_dv = LEAK == LEAK_NONE ? 1.0f : 1.0f - k;
  const float dh_dx = (LEAK != LEAK_NONE && DECAY_INPUT) ? k : 1.0f;
  const float ds = detach_reset ? 0.0f : 1.0f;
  at::parallel_for(0, (N + TILE - 1) / TILE, 1, [=](int64_t tile_begin, int64_t tile_end) {
    float gv[TILE], gk[TILE], sg[TILE], v_prev[TILE];
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t begin = tile * TILE, n = std::min(N, begin + TILE) - begin;
      std::copy(grad_v_last + begin, grad_v_last + begin + n, gv);
      std::fill(gk, gk + n, 0.0f);
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t o = t * N + begin;
        surrogate_grad_tile(h_seq + o, th, n, sg_id, alpha, sg);
        if (LEAK == LEAK_MUL) {  // the state before step t: v0, or the reset of step t-1
          if (t == 0) {
            std::copy(v0 + begin, v0 + begin + n, v_prev);
          } else {
            const float* hp = h_seq + o - N;
            for (int64_t i = 0; i < n; ++i) v_prev[i] = reset_v<RESET>(hp[i], hp[i] - th >= 0.0f, th, vr);
          }
        }
        backward_tile<LEAK, DECAY_INPUT, RESET>(h_seq + o, grad_s + o, sg, LEAK == LEAK_MUL ? x + o : nullptr,
                                                v_prev, grad_x + o, gv, gk, n, th, vr, ds, dh_dv, dh_dx);
      }
      std::copy(gv, gv + n, grad_v0 + begin);
      if (LEAK == LEAK_MUL) std::copy(gk, gk + n, grad_k_part + begin);
    }
  });
}
template <typename F>
void dispatch(int64_t leak, bool decay_input, int64_t reset, F&& f) {
#define SNN_CASE(L, D, R)                                          \
  if (leak == L && decay_input == D && reset == R) {               \
    f(std::integral_constant<int, L>{}, std::integral_constant<bool, D>{}, std::integral_constant<int, R>{}); \
    return;                                                        \
  }
#define SNN_CASES_LR(L, D) SNN_CASE(L, D, RESET_HARD) SNN_CASE(L, D, RESET_SOFT) SNN_CASE(L, D, RESET_NONE)
  SNN_CASES_LR(LEAK_NONE, true)
  SNN_CASES_LR(LEAK_NONE, false)
  SNN_CASES_LR(LEAK_DIV, true)
  SNN_CASES_LR(LEAK_DIV, false)
  SNN_CASES_LR(LEAK_MUL, true)
  SNN_CASES_LR(LEAK_MUL, false)
#undef SNN_CASES_LR
#undef SNN_CASE
  TORCH_CHECK(false, "if_family: unsupported leak/reset combination");
}

void check_input(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == torch::kFloat32, name, " must be float32");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

}  // namespace

// x: [T, N], v0: [N] -> (spikes [T, N], v_T [N], h_seq [T, N])
std::vector<torch::Tensor> forward(torch::Tensor x, torch::Tensor v0, int64_t leak, double tau, double k,
                                   bool decay_input, double th, double vr, int64_t reset) {
  check_input(x, "x");
  check_input(v0, "v0");
  const int64_t T = x.size(0), N = v0.numel();
  TORCH_CHECK(x.numel() == T * N, "x and v0 sizes disagree");
  auto v = v0.clone();
  auto s = torch::empty_like(x);
  auto h = torch::empty_like(x);
  dispatch(leak, decay_input, reset, [&](auto L, auto D, auto R) {
    forward_impl<decltype(L)::value, decltype(D)::value, decltype(R)::value>(
        x.data_ptr<float>(), v.data_ptr<float>(), s.data_ptr<float>(), h.data_ptr<float>(), T, N,
        static_cast<float>(tau), static_cast<float>(k), static_cast<float>(th), static_cast<float>(vr));
  });
  return {s, v, h};
}

// -> (grad_x [T, N], grad_v0 [N], grad_k per element [N] (empty unless leak == LEAK_MUL))
std::vector<torch::Tensor> backward(torch::Tensor grad_s, torch::Tensor grad_v_last, torch::Tensor h_seq,
                                    torch::Tensor x, torch::Tensor v0, int64_t leak, double k, bool decay_input,
                                    double th, double vr, int64_t reset, int64_t sg_id, double alpha,
                                    bool detach_reset) {
  check_input(grad_s, "grad_s");
  check_input(grad_v_last, "grad_v_last");
  check_input(h_seq, "h_seq");
  const int64_t T = h_seq.size(0), N = grad_v_last.numel();
  auto grad_x = torch::empty_like(h_seq);
  auto grad_v0 = torch::empty_like(grad_v_last);
  auto grad_k = leak == LEAK_MUL ? torch::empty_like(grad_v_last) : torch::empty({0}, grad_v_last.options());
  const float* x_ptr = nullptr;
  const float* v0_ptr = nullptr;
  if (leak == LEAK_MUL) {
    check_input(x, "x");
    check_input(v0, "v0");
    x_ptr = x.data_ptr<float>();
    v0_ptr = v0.data_ptr<float>();
  }
  dispatch(leak, decay_input, reset, [&](auto L, auto D, auto R) {
    backward_impl<decltype(L)::value, decltype(D)::value, decltype(R)::value>(
        grad_s.data_ptr<float>(), grad_v_last.data_ptr<float>(), h_seq.data_ptr<float>(), x_ptr, v0_ptr,
        grad_x.data_ptr<float>(), grad_v0.data_ptr<float>(), leak == LEAK_MUL ? grad_k.data_ptr<float>() : nullptr,
        T, N, static_cast<float>(k), static_cast<float>(th), static_cast<float>(vr), static_cast<int>(sg_id),
        static_cast<float>(alpha), detach_reset);
  });
  return {grad_x, grad_v0, grad_k};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "fused multi-step IF-family forward (CPU)");
  m.def("backward", &backward, "fused multi-step IF-family backward (CPU)");
}
