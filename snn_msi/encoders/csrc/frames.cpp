// The batch transform of uint8 frame crops on the CPU, in one pass per plane: to float in [0, 1], bilinear resize
// (F.interpolate, mode="bilinear", align_corners=False), mirror, normalise.
//
// The arithmetic is PyTorch's, in its order: pixel = u8 * float(1 / 255); source index and weights as ATen's
// upsample (scale = in / out in float, src = max(scale * (dst + 0.5) - 0.5, 0), lambda1 = src - floor(src), lambda0
// = 1 - lambda1; the last row / column repeats); a row is interpolated along the width first (t = x0 * w0 + x1 * w1),
// then t(row0) * h0 + t(row1) * h1; then (v - mean) / std. The file is compiled without FP contraction, and the
// multiply-adds that ATen's generic NCHW kernel contracts on x86 (AVX2, AVX-512 builds) are written as std::fma.
// The frames equal F.interpolate's to float32 rounding (1-2 ulp; tests/test_frames_cpu.py), bit for bit where
// ATen runs that kernel (on the development machine: 2 threads, outputs of 224); ATen itself picks other kernels
// by thread count and output size (its channels-last one for small outputs), whose last bits differ. These
// frames are the same for any thread count.
//
// Separable: each input row the output needs is interpolated along the width once (into a row cache), then every
// output row is a weighted sum of two cached rows, which vectorises. A mirrored crop reads the width table
// backwards, so the mirror costs nothing.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

struct Axis {
  std::vector<int32_t> i0, i1;
  std::vector<float> l0, l1;
};

Axis axis(int64_t in, int64_t out) {
  Axis a;
  a.i0.resize(out), a.i1.resize(out), a.l0.resize(out), a.l1.resize(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    float src = std::fma(scale, static_cast<float>(o) + 0.5f, -0.5f);
    src = std::max(src, 0.0f);
    int64_t i = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
    float l1 = std::min(std::max(src - static_cast<float>(i), 0.0f), 1.0f);
    a.i0[o] = static_cast<int32_t>(i);
    a.i1[o] = static_cast<int32_t>(i + (i < in - 1 ? 1 : 0));
    a.l1[o] = l1;
    a.l0[o] = 1.0f - l1;
  }
  return a;
}

// crops: B uint8 tensors [K, C, h_b, w_b] (contiguous); flips: bool [B]; mean / std: float [C] or empty (no
// normalisation) -> float [B, K, C, size, size]
torch::Tensor finish(std::vector<torch::Tensor> crops, torch::Tensor flips, int64_t size, torch::Tensor mean,
                     torch::Tensor std) {
  TORCH_CHECK(!crops.empty(), "finish: no crops");
  TORCH_CHECK(crops[0].dim() == 4, "finish: crops must be uint8 [K, C, h, w]");
  TORCH_CHECK(size > 0, "finish: the output size must be positive");
  const int64_t B = static_cast<int64_t>(crops.size()), K = crops[0].size(0), C = crops[0].size(1);
  flips = flips.to(torch::kBool).contiguous();
  TORCH_CHECK(flips.numel() == B, "finish: one flip per crop");
  const bool norm = mean.numel() > 0;
  if (norm) {
    mean = mean.to(torch::kFloat).contiguous(), std = std.to(torch::kFloat).contiguous();
    TORCH_CHECK(mean.numel() == C && std.numel() == C, "finish: mean and std need one value per channel");
  }
  for (auto& c : crops) {
    TORCH_CHECK(c.device().is_cpu(), "finish: crops must be on the CPU");
    TORCH_CHECK(c.scalar_type() == torch::kUInt8 && c.dim() == 4, "finish: crops must be uint8 [K, C, h, w]");
    TORCH_CHECK(c.size(0) == K && c.size(1) == C, "finish: crops must have the same K and C");
    TORCH_CHECK(c.size(2) > 0 && c.size(3) > 0, "finish: a crop needs at least one pixel");
    c = c.contiguous();
  }
  auto out = torch::empty({B, K, C, size, size}, torch::kFloat);
  float* o = out.data_ptr<float>();
  const bool* flip = flips.data_ptr<bool>();
  const float* mu = norm ? mean.data_ptr<float>() : nullptr;
  const float* sd = norm ? std.data_ptr<float>() : nullptr;
  const float unit = static_cast<float>(1.0 / 255.0);
  const int64_t planes = B * K * C, area = size * size;
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> line, cache;
    std::vector<int32_t> cached;
    int64_t b_axes = -1;
    Axis ah, aw;
    for (int64_t p = begin; p < end; ++p) {
      const int64_t b = p / (K * C), c = p % C;
      const auto& crop = crops[b];
      const int64_t h = crop.size(2), w = crop.size(3);
      if (b != b_axes) {
        ah = axis(h, size), aw = axis(w, size), b_axes = b;
        if (flip[b]) {
          std::reverse(aw.i0.begin(), aw.i0.end()), std::reverse(aw.i1.begin(), aw.i1.end());
          std::reverse(aw.l0.begin(), aw.l0.end()), std::reverse(aw.l1.begin(), aw.l1.end());
        }
      }
      const uint8_t* src = crop.data_ptr<uint8_t>() + (p % (K * C)) * h * w;
      line.resize(w);
      cache.resize(h * size);
      cached.assign(h, 0);
      auto row = [&](int32_t r) -> const float* {  // row r of the input, interpolated along the width
        float* t = cache.data() + static_cast<int64_t>(r) * size;
        if (!cached[r]) {
          const uint8_t* s = src + static_cast<int64_t>(r) * w;
          for (int64_t x = 0; x < w; ++x) line[x] = static_cast<float>(s[x]) * unit;
          const int32_t *i0 = aw.i0.data(), *i1 = aw.i1.data();
          const float *l0 = aw.l0.data(), *l1 = aw.l1.data();
          for (int64_t x = 0; x < size; ++x) t[x] = std::fma(line[i0[x]], l0[x], line[i1[x]] * l1[x]);
          cached[r] = 1;
        }
        return t;
      };
      float* dst = o + p * area;
      const float m = norm ? mu[c] : 0.0f, s = norm ? sd[c] : 1.0f;
      for (int64_t y = 0; y < size; ++y) {
        const float* t0 = row(ah.i0[y]);
        const float* t1 = row(ah.i1[y]);
        const float h0 = ah.l0[y], h1 = ah.l1[y];
        float* d = dst + y * size;
        if (norm) {
          for (int64_t x = 0; x < size; ++x) d[x] = (std::fma(t0[x], h0, t1[x] * h1) - m) / s;
        } else {
          for (int64_t x = 0; x < size; ++x) d[x] = std::fma(t0[x], h0, t1[x] * h1);
        }
      }
    }
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("finish", &finish, "uint8 crops -> resized, mirrored, normalised float frames [B, K, C, size, size]",
        py::call_guard<py::gil_scoped_release>());
}
