// Fused multi-step IF / LIF / ParametricLIF for the CPU: one pass over [T, N] per direction.
//
// Elementwise along N (parallel, vectorisable), sequential along T. Arithmetic is written in the same order as
// the PyTorch reference (neurons/kernels/reference.py) and compiled without FP contraction, so spikes are
// bitwise equal to the reference. State and all arithmetic are float32; the input, the spikes, the incoming spike
// gradient and the input gradient are float32, bfloat16 or float16 (read and written in their own dtype,
// converted in registers: no conversion copies on the Python side). The forward writes only the spikes and the
// final state; the backward recomputes the membrane from the saved input, tile by tile in cache, so that each
// direction moves the bytes a ReLU moves (read one tensor, write one; backward: read two, write one).
//
// The integer codes of leaks, resets and surrogates are not written here: neurons/kernels/cpu.py passes them as
// -D flags generated from the tables in neurons/functional.py (LEAKS, RESETS) and neurons/surrogate.py
// (KERNEL_SURROGATES), the same tables the Triton kernels and the Python side read.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

#if !defined(SNN_LEAK_NONE) || !defined(SNN_RESET_HARD) || !defined(SNN_SG_SIGMOID)
#error "build through neurons/kernels/cpu.py: it defines the SNN_* codes from the Python tables"
#endif
enum Leak { LEAK_NONE = SNN_LEAK_NONE, LEAK_DIV = SNN_LEAK_DIV, LEAK_MUL = SNN_LEAK_MUL };
enum Reset { RESET_HARD = SNN_RESET_HARD, RESET_SOFT = SNN_RESET_SOFT, RESET_NONE = SNN_RESET_NONE };

// Loads and stores of the input-side dtype through its raw bits (so the loops stay vectorisable).
template <typename T>
struct IO;
template <>
struct IO<float> {
  using raw = float;
  static inline float load(float v) { return v; }
  static inline float spike(bool b) { return b ? 1.0f : 0.0f; }
  static inline float store(float v) { return v; }
};
template <>
struct IO<c10::BFloat16> {
  using raw = uint16_t;
  static inline float load(uint16_t b) {
    const uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  static inline uint16_t spike(bool b) { return b ? 0x3F80 : 0; }        // 1.0 and 0.0 in bfloat16
  static inline uint16_t store(float v) { return c10::BFloat16(v).x; }  // round to nearest even, as .to()
};
template <>
struct IO<c10::Half> {
  using raw = uint16_t;
  static inline float load(uint16_t b) { return c10::detail::fp16_ieee_to_fp32_value(b); }
  static inline uint16_t spike(bool b) { return b ? 0x3C00 : 0; }  // 1.0 and 0.0 in float16
  static inline uint16_t store(float v) { return c10::Half(v).x; }
};

inline float surrogate_grad(float x, int id, float a) {
  switch (id) {
    case SNN_SG_SIGMOID: {  // sigmoid
      float sg = 1.0f / (1.0f + std::exp(-a * x));
      return a * sg * (1.0f - sg);
    }
    case SNN_SG_ATAN: {  // atan; alpha / 2 first, as the reference does (one division per element, not two)
      float t = static_cast<float>(M_PI) / 2.0f * a * x;
      return (a * 0.5f) / (1.0f + t * t);
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
inline void map_tile(const float* __restrict__ h, float th, int64_t n, float* __restrict__ out, F f) {
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
inline float reset_v(float h, bool spike, float th, float vr) {
  // selects, not s * vr + (1 - s) * h: the same values for s in {0, 1} (up to the sign of a zero membrane),
  // and the compiler vectorises them
  if (RESET == RESET_HARD) return spike ? vr : h;
  if (RESET == RESET_SOFT) return spike ? h - th : h;
  return h;
}

// Neurons are processed in tiles of TILE so that the state of a tile stays in L1 across all T steps.
constexpr int64_t TILE = 2048;
// below this many elements (T * N) one thread does the whole op: a parallel region costs more than it saves
constexpr int64_t SERIAL_ELEMENTS = 32768;

int64_t tile_grain(int64_t T) { return std::max<int64_t>(1, SERIAL_ELEMENTS / (TILE * std::max<int64_t>(T, 1))); }

// One step of one tile: restrict pointers and by-value scalars let the compiler vectorise the loop. Writes the
// charged membrane to h_out when it is not null (the backward's recompute); returns non-zero when some input is
// NaN or infinite (one compare per element: cheaper than a second pass over x).
template <typename S, int LEAK, bool DECAY_INPUT, int RESET, bool SPIKES, bool KEEP_H>
inline int forward_tile(const typename IO<S>::raw* __restrict__ x, float* __restrict__ v,
                        typename IO<S>::raw* __restrict__ s, float* __restrict__ h_out, int64_t n, const float tau,
                        const float k, const float th, const float vr) {
  int bad = 0;
#pragma omp simd reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    const float xi = IO<S>::load(x[i]);
    if (SPIKES) bad |= !(std::fabs(xi) <= FLT_MAX);  // NaN compares false
    const float h = charge<LEAK, DECAY_INPUT>(xi, v[i], tau, k, vr);
    const bool spike = h - th >= 0.0f;
    if (KEEP_H) h_out[i] = h;
    if (SPIKES) s[i] = IO<S>::spike(spike);
    v[i] = reset_v<RESET>(h, spike, th, vr);
  }
  return bad;
}

// The forward writes only the spikes and the final state: the backward recomputes the membrane from x (saved
// instead of h: no second output stream in the forward, and half the saved bytes for 16-bit inputs).
template <typename S, int LEAK, bool DECAY_INPUT, int RESET>
bool forward_impl(const typename IO<S>::raw* x, const float* v0, float* v, typename IO<S>::raw* s, int64_t T,
                  int64_t N, float tau, float k, float th, float vr) {
  std::atomic<int> any_bad{0};
  std::atomic<int>* any_bad_ptr = &any_bad;
  // by value: the closure's copies of the pointers and scalars cannot alias the outputs the loops write
  at::parallel_for(0, (N + TILE - 1) / TILE, tile_grain(T), [=](int64_t tile_begin, int64_t tile_end) {
    int bad = 0;
    alignas(64) float vt[TILE];  // the tile's state on this thread's stack, written back once
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t begin = tile * TILE, n = std::min(N, begin + TILE) - begin;
      if (v0 != nullptr) {
        std::copy(v0 + begin, v0 + begin + n, vt);
      } else {
        std::fill(vt, vt + n, vr);
      }
      for (int64_t t = 0; t < T; ++t) {
        const int64_t o = t * N + begin;
        bad |= forward_tile<S, LEAK, DECAY_INPUT, RESET, true, false>(x + o, vt, s + o, nullptr, n, tau, k, th, vr);
      }
      std::copy(vt, vt + n, v + begin);
    }
    if (bad) any_bad_ptr->store(1, std::memory_order_relaxed);
  });
  return any_bad.load() != 0;
}

// One step of the backward for one tile. gv holds dL/dv_t on entry and dL/dv_{t-1} on exit.
template <typename S, int LEAK, bool DECAY_INPUT, int RESET>
inline void backward_tile(const float* __restrict__ h, const typename IO<S>::raw* __restrict__ gs,
                          const float* __restrict__ sg, const typename IO<S>::raw* __restrict__ x,
                          const float* __restrict__ v_prev, typename IO<S>::raw* __restrict__ gx,
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
    const float gh = IO<S>::load(gs[i]) * sg[i] + g * dr_dh + ds * g * dr_ds * sg[i];
    gx[i] = IO<S>::store(gh * dh_dx);
    if (LEAK == LEAK_MUL) {
      gk[i] += DECAY_INPUT ? gh * (IO<S>::load(x[i]) - (v_prev[i] - vr)) : -gh * (v_prev[i] - vr);
    }
    gv[i] = gh * dh_dv;
  }
}

// neurons per backward tile: the recomputed membrane of a tile (T x tile floats) stays within 8 KiB (L1)
inline int64_t backward_tile_size(int64_t T) {
  return std::max<int64_t>(64, std::min<int64_t>(TILE, (2048 / std::max<int64_t>(T, 1)) / 64 * 64));
}

template <typename S, int LEAK, bool DECAY_INPUT, int RESET>
void backward_impl(const typename IO<S>::raw* grad_s, const float* grad_v_last, const typename IO<S>::raw* x,
                   const float* v0, typename IO<S>::raw* grad_x, float* grad_v0, float* grad_k_part, int64_t T,
                   int64_t N, float tau, float k, float th, float vr, int sg_id, float alpha, bool detach_reset) {
  const float dh_dv = LEAK == LEAK_NONE ? 1.0f : 1.0f - k;
  const float dh_dx = (LEAK != LEAK_NONE && DECAY_INPUT) ? k : 1.0f;
  const float ds = detach_reset ? 0.0f : 1.0f;
  const int64_t B = backward_tile_size(T);
  const int64_t tiles = (N + B - 1) / B;
  const int64_t grain = std::max<int64_t>(1, SERIAL_ELEMENTS / (B * std::max<int64_t>(T, 1)));
  at::parallel_for(0, tiles, grain, [=](int64_t tile_begin, int64_t tile_end) {
    std::vector<float> h_buf(static_cast<size_t>(T * B));  // the tile's membrane, all T steps
    alignas(64) float gv[TILE], gk[TILE], sg[TILE], v_prev[TILE], v[TILE];
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t begin = tile * B, n = std::min(N, begin + B) - begin;
      // recompute h_t of this tile, t = 0 .. T-1 (the same code as the forward: bitwise the same values)
      if (v0 != nullptr) {
        std::copy(v0 + begin, v0 + begin + n, v);
      } else {
        std::fill(v, v + n, vr);
      }
      for (int64_t t = 0; t < T; ++t) {
        forward_tile<S, LEAK, DECAY_INPUT, RESET, false, true>(x + t * N + begin, v, nullptr, h_buf.data() + t * B,
                                                                n, tau, k, th, vr);
      }
      if (grad_v_last != nullptr) {
        std::copy(grad_v_last + begin, grad_v_last + begin + n, gv);
      } else {
        std::fill(gv, gv + n, 0.0f);
      }
      std::fill(gk, gk + n, 0.0f);
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t o = t * N + begin;
        const float* h = h_buf.data() + t * B;
        surrogate_grad_tile(h, th, n, sg_id, alpha, sg);
        if (LEAK == LEAK_MUL) {  // the state before step t: v0 (v_reset when fresh), or the reset of step t-1
          if (t > 0) {
            const float* hp = h - B;
            for (int64_t i = 0; i < n; ++i) v_prev[i] = reset_v<RESET>(hp[i], hp[i] - th >= 0.0f, th, vr);
          } else if (v0 != nullptr) {
            std::copy(v0 + begin, v0 + begin + n, v_prev);
          } else {
            std::fill(v_prev, v_prev + n, vr);
          }
        }
        backward_tile<S, LEAK, DECAY_INPUT, RESET>(h, grad_s + o, sg, LEAK == LEAK_MUL ? x + o : nullptr, v_prev,
                                                   grad_x + o, gv, gk, n, th, vr, ds, dh_dv, dh_dx);
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

// f(S{}) with S the C++ type of the input-side dtype
template <typename F>
void dispatch_dtype(at::ScalarType t, F&& f) {
  switch (t) {
    case at::kFloat: f(float{}); return;
    case at::kBFloat16: f(c10::BFloat16{}); return;
    case at::kHalf: f(c10::Half{}); return;
    default: TORCH_CHECK(false, "if_family: input dtype must be float32, bfloat16 or float16, got ", t);
  }
}

template <typename S>
typename IO<S>::raw* raw_ptr(const torch::Tensor& t) {
  return reinterpret_cast<typename IO<S>::raw*>(t.data_ptr());
}

void check_input(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

void check_state(const torch::Tensor& t, const char* name, int64_t n) {
  check_input(t, name);
  TORCH_CHECK(t.scalar_type() == torch::kFloat32, name, " must be float32");
  TORCH_CHECK(t.numel() == n, name, " has ", t.numel(), " elements, expected ", n);
}

}  // namespace

// x: [T, ...] (float32 / bfloat16 / float16), v0: [...] float32 or None (a fresh state: v_reset everywhere)
// -> (spikes [T, ...] in x's dtype, v_T [...] float32, whether any input is NaN or infinite)
std::tuple<torch::Tensor, torch::Tensor, bool> forward(const torch::Tensor& x_in, const c10::optional<torch::Tensor>& v0,
                                                       int64_t leak, double tau, double k, bool decay_input, double th,
                                                       double vr, int64_t reset) {
  RECORD_FUNCTION("snn_msi::if_family_fwd_cpu", std::vector<c10::IValue>());  // visible to torch.profiler
  TORCH_CHECK(x_in.device().is_cpu(), "x must be a CPU tensor");
  TORCH_CHECK(x_in.dim() >= 1 && x_in.size(0) >= 1, "x must be [T, ...] with T >= 1");
  const auto x = x_in.contiguous();
  const int64_t T = x.size(0), N = x.numel() / T;
  const float* v0_ptr = nullptr;
  torch::Tensor v0c;
  if (v0.has_value() && v0->defined()) {
    v0c = v0->contiguous();
    check_state(v0c, "v0", N);
    v0_ptr = v0c.data_ptr<float>();
  }
  auto v = torch::empty(x.sizes().slice(1), x.options().dtype(torch::kFloat32));
  auto s = torch::empty_like(x, at::MemoryFormat::Contiguous);
  bool bad = false;
  dispatch_dtype(x.scalar_type(), [&](auto s_tag) {
    using S = decltype(s_tag);
    dispatch(leak, decay_input, reset, [&](auto L, auto D, auto R) {
      bad = forward_impl<S, decltype(L)::value, decltype(D)::value, decltype(R)::value>(
          raw_ptr<S>(x), v0_ptr, v.data_ptr<float>(), raw_ptr<S>(s), T, N, static_cast<float>(tau),
          static_cast<float>(k), static_cast<float>(th), static_cast<float>(vr));
    });
  });
  return {s, v, bad};
}

// grad_s: [T, ...] in x's dtype; grad_v_last: [...] float32 or None (no gradient: zeros); x: the forward's input
// [T, ...] and v0 its initial state ([...] float32 or None: v_reset), from which the membrane is recomputed.
// -> (grad_x [T, ...] in x's dtype, grad_v0 [...], grad_k per element [N] (empty unless leak == LEAK_MUL))
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> backward(const torch::Tensor& grad_s_in,
                                                                 const c10::optional<torch::Tensor>& grad_v_last,
                                                                 const torch::Tensor& x_in,
                                                                 const c10::optional<torch::Tensor>& v0, int64_t leak,
                                                                 double tau, double k, bool decay_input, double th,
                                                                 double vr, int64_t reset, int64_t sg_id, double alpha,
                                                                 bool detach_reset) {
  RECORD_FUNCTION("snn_msi::if_family_bwd_cpu", std::vector<c10::IValue>());
  TORCH_CHECK(x_in.device().is_cpu() && grad_s_in.device().is_cpu(), "x and grad_s must be CPU tensors");
  const auto x = x_in.contiguous();
  const int64_t T = x.size(0), N = x.numel() / T;
  TORCH_CHECK(grad_s_in.numel() == T * N, "grad_s must have x's size");
  const auto grad_s = grad_s_in.to(x.scalar_type()).contiguous();
  const float* gv_ptr = nullptr;
  torch::Tensor gvc, v0c;
  if (grad_v_last.has_value() && grad_v_last->defined()) {
    gvc = grad_v_last->to(torch::kFloat32).contiguous();
    check_state(gvc, "grad_v_last", N);
    gv_ptr = gvc.data_ptr<float>();
  }
  const float* v0_ptr = nullptr;
  if (v0.has_value() && v0->defined()) {
    v0c = v0->contiguous();
    check_state(v0c, "v0", N);
    v0_ptr = v0c.data_ptr<float>();
  }
  const auto f32 = x.options().dtype(torch::kFloat32);
  auto grad_x = torch::empty_like(x, at::MemoryFormat::Contiguous);
  auto grad_v0 = torch::empty(x.sizes().slice(1), f32);
  auto grad_k = leak == LEAK_MUL ? torch::empty({N}, f32) : torch::empty({0}, f32);
  dispatch_dtype(x.scalar_type(), [&](auto s_tag) {
    using S = decltype(s_tag);
    dispatch(leak, decay_input, reset, [&](auto L, auto D, auto R) {
      backward_impl<S, decltype(L)::value, decltype(D)::value, decltype(R)::value>(
          raw_ptr<S>(grad_s), gv_ptr, raw_ptr<S>(x), v0_ptr, raw_ptr<S>(grad_x), grad_v0.data_ptr<float>(),
          leak == LEAK_MUL ? grad_k.data_ptr<float>() : nullptr, T, N, static_cast<float>(tau),
          static_cast<float>(k), static_cast<float>(th), static_cast<float>(vr), static_cast<int>(sg_id),
          static_cast<float>(alpha), detach_reset);
    });
  });
  return {grad_x, grad_v0, grad_k};
}

// The eager op with its autograd node in C++: a call costs a few microseconds of Python and the backward none
// (the Python autograd.Function cost ~20 us forward and ~45 us backward per call, more than a small layer's
// kernels). Saves x (and v0, k); a non-finite input (when check) raises ValueError("SNN_MSI_NONFINITE ...").
struct IFFamilyFunction : public torch::autograd::Function<IFFamilyFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                                                const c10::optional<torch::Tensor>& v0,
                                                const c10::optional<torch::Tensor>& k, int64_t leak, bool decay_input,
                                                double tau, double th, double vr, int64_t reset, int64_t sg_id,
                                                double alpha, bool detach_reset, bool check) {
    const bool has_v0 = v0.has_value() && v0->defined(), has_k = k.has_value() && k->defined();
    TORCH_CHECK(has_k == (leak == LEAK_MUL), "the leak tensor k is given exactly for leak 'mul'");
    const double kv = has_k ? k->item<double>() : (leak == LEAK_NONE ? 0.0 : 1.0 / tau);
    auto out = ::forward(x, v0, leak, tau, kv, decay_input, th, vr, reset);
    TORCH_CHECK_VALUE(!(check && std::get<2>(out)), "SNN_MSI_NONFINITE: non-finite input");
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({x, has_v0 ? *v0 : torch::Tensor(), has_k ? *k : torch::Tensor()});
    ctx->saved_data["leak"] = leak;
    ctx->saved_data["decay"] = decay_input;
    ctx->saved_data["tau"] = tau;
    ctx->saved_data["k"] = kv;
    ctx->saved_data["th"] = th;
    ctx->saved_data["vr"] = vr;
    ctx->saved_data["reset"] = reset;
    ctx->saved_data["sg"] = sg_id;
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["detach"] = detach_reset;
    return {std::get<0>(out), std::get<1>(out)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& v0 = saved[1];
    const auto& k = saved[2];
    auto& d = ctx->saved_data;
    const int64_t leak = d["leak"].toInt();
    torch::Tensor gs = grads[0].defined() ? grads[0] : torch::zeros_like(x);
    auto out = ::backward(gs, grads[1].defined() ? c10::optional<torch::Tensor>(grads[1]) : c10::nullopt, x,
                          v0.defined() ? c10::optional<torch::Tensor>(v0) : c10::nullopt, leak, d["tau"].toDouble(),
                          d["k"].toDouble(), d["decay"].toBool(), d["th"].toDouble(), d["vr"].toDouble(),
                          d["reset"].toInt(), d["sg"].toInt(), d["alpha"].toDouble(), d["detach"].toBool());
    torch::Tensor grad_k;
    if (k.defined()) grad_k = std::get<2>(out).sum().to(k.scalar_type()).reshape(k.sizes());
    torch::Tensor grad_v0 = v0.defined() ? std::get<1>(out) : torch::Tensor();
    torch::autograd::variable_list result(14);
    result[0] = std::get<0>(out);
    result[1] = grad_v0;
    result[2] = grad_k;
    return result;
  }
};

// the spec's arguments in neurons.functional.IF_SPEC_FIELDS order, by those names (tests/test_kernels.py checks)
std::vector<torch::Tensor> apply(const torch::Tensor& x, const c10::optional<torch::Tensor>& v0,
                                 const c10::optional<torch::Tensor>& k, int64_t leak, bool decay_input, double tau,
                                 double v_threshold, double v_reset, int64_t reset, int64_t surrogate, double alpha,
                                 bool detach_reset, bool check) {
  return IFFamilyFunction::apply(x, v0, k, leak, decay_input, tau, v_threshold, v_reset, reset, surrogate, alpha,
                                 detach_reset, check);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "fused multi-step IF-family forward (CPU)");
  m.def("backward", &backward, "fused multi-step IF-family backward (CPU)");
  m.def("apply", &apply, "fused multi-step IF-family op with its autograd node (CPU, eager)");
}
