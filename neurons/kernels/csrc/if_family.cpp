// Fused multi-step IF / LIF / ParametricLIF for the CPU: one pass over [T, N] per direction.
//
// Elementwise along N (parallel, vectorisable), sequential along T. Arithmetic is written in the same order as
// the PyTorch reference (neurons/kernels/reference.py) and compiled without FP contraction, so spikes are
// bitwise equal to the reference. State and arithmetic are float32; x may be float32 only (the Python side
// converts other dtypes).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

enum Leak { LEAK_NONE = 0, LEAK_DIV = 1, LEAK_MUL = 2 };
enum Reset { RESET_HARD = 0, RESET_SOFT = 1, RESET_NONE = 2 };

inline float surrogate_grad(float x, int id, float a) {
  switch (id) {
    case 0: {  // sigmoid
      float sg = 1.0f / (1.0f + std::exp(-a * x));
      return a * sg * (1.0f - sg);
    }
    case 1: {  // atan
      float t = static_cast<float>(M_PI) / 2.0f * a * x;
      return a / 2.0f / (1.0f + t * t);
    }
    case 2: {  // fast sigmoid
      float d = a * std::fabs(x) + 1.0f;
      return 1.0f / (d * d);
    }
    case 3:  // triangle
      return std::max(0.0f, 1.0f - a * std::fabs(x));
    case 4:  // piecewise quadratic
      return std::max(0.0f, a - a * a * std::fabs(x));
    case 5:  // rectangular
      return std::fabs(x) < 0.5f / a ? a : 0.0f;
    case 6:  // erf
      return a / std::sqrt(static_cast<float>(M_PI)) * std::exp(-(a * x) * (a * x));
  }
  return 0.0f;
}

template <int LEAK, bool DECAY_INPUT>
inline float charge(float x, float v, float tau, float k, float vr) {
  if (LEAK == LEAK_NONE) return v + x;
  if (LEAK == LEAK_DIV) return DECAY_INPUT ? v + (x - (v - vr)) / tau : v - (v - vr) / tau + x;
  return DECAY_INPUT ? v + (x - (v - vr)) * k : v - (v - vr) * k + x;
}

template <int RESET>
inline float reset_v(float h, float s, float th, float vr) {
  if (RESET == RESET_HARD) return s * vr + (1.0f - s) * h;
  if (RESET == RESET_SOFT) return h - s * th;
  return h;
}

template <int LEAK, bool DECAY_INPUT, int RESET>
void forward_impl(const float* x, float* v, float* s, float* h_seq, int64_t T, int64_t N, float tau, float k,
                  float th, float vr) {
  at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * N;
      float* st = s + t * N;
      float* ht = h_seq + t * N;
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        float h = charge<LEAK, DECAY_INPUT>(xt[i], v[i], tau, k, vr);
        float spike = (h - th) >= 0.0f ? 1.0f : 0.0f;
        ht[i] = h;
        st[i] = spike;
        v[i] = reset_v<RESET>(h, spike, th, vr);
      }
    }
  });
}

template <int LEAK, bool DECAY_INPUT, int RESET>
void backward_impl(const float* grad_s, const float* grad_v_last, const float* h_seq, const float* x,
                   const float* v0, float* grad_x, float* grad_v0, float* grad_k_part, int64_t T, int64_t N,
                   float k, float th, float vr, int sg_id, float alpha, bool detach_reset) {
  const float dh_dv = LEAK == LEAK_NONE ? 1.0f : 1.0f - k;
  const float dh_dx = (LEAK != LEAK_NONE && DECAY_INPUT) ? k : 1.0f;
  const float ds = detach_reset ? 0.0f : 1.0f;
  at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
    // gv: gradient w.r.t. the membrane after step t, carried backwards; gk: per-element d/dk
    std::vector<float> gv(grad_v_last + begin, grad_v_last + end);
    std::vector<float> gk(LEAK == LEAK_MUL ? end - begin : 0, 0.0f);
    for (int64_t t = T - 1; t >= 0; --t) {
      const float* ht = h_seq + t * N;
      const float* gst = grad_s + t * N;
      float* gxt = grad_x + t * N;
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        const float h = ht[i];
        const float sp = (h - th) >= 0.0f ? 1.0f : 0.0f;
        const float sg = surrogate_grad(h - th, sg_id, alpha);
        float dr_dh = 1.0f, dr_ds = 0.0f;
        if (RESET == RESET_HARD) {
          dr_dh = 1.0f - sp;
          dr_ds = vr - h;
        } else if (RESET == RESET_SOFT) {
          dr_ds = -th;
        }
        const float g = gv[i - begin];
        const float gh = gst[i] * sg + g * dr_dh + ds * g * dr_ds * sg;
        gxt[i] = gh * dh_dx;
        if (LEAK == LEAK_MUL) {
          float v_prev;  // the state before step t: v0, or the reset of step t-1
          if (t == 0) {
            v_prev = v0[i];
          } else {
            const float hp = ht[i - N];
            v_prev = reset_v<RESET>(hp, (hp - th) >= 0.0f ? 1.0f : 0.0f, th, vr);
          }
          gk[i - begin] += DECAY_INPUT ? gh * (x[t * N + i] - (v_prev - vr)) : -gh * (v_prev - vr);
        }
        gv[i - begin] = gh * dh_dv;
      }
    }
    std::copy(gv.begin(), gv.end(), grad_v0 + begin);
    if (LEAK == LEAK_MUL) std::copy(gk.begin(), gk.end(), grad_k_part + begin);
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
