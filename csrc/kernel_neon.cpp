// aarch64 NEON kernel, written for the Cortex-A53 (in-order, dual issue): two independent
// accumulators hide the add -> abs -> max latency chain; FACGE does |H| >= max in one instruction.
#include <arm_neon.h>

#include <cmath>

#include "kernels.h"

namespace adlcodec {
namespace {

NonFiniteScan scan_nonfinite_neon(const float* grad, const float* residual, uint64_t n) {
  NonFiniteScan scan;
  constexpr uint64_t kBlock = 1024;
  const float32x4_t fmax = vdupq_n_f32(3.40282347e+38f);
  uint64_t start = 0;
  for (; start + kBlock <= n; start += kBlock) {
    // |H| <= FLT_MAX is false for NaN and Inf; AND of all lanes stays all-ones on a clean block.
    uint32x4_t ok0 = vdupq_n_u32(~0u), ok1 = ok0;
    for (uint64_t i = 0; i < kBlock; i += 8) {
      const float32x4_t g0 = vld1q_f32(grad + start + i), g1 = vld1q_f32(grad + start + i + 4);
      const float32x4_t H0 = vaddq_f32(vaddq_f32(vld1q_f32(residual + start + i), g0), g0);
      const float32x4_t H1 = vaddq_f32(vaddq_f32(vld1q_f32(residual + start + i + 4), g1), g1);
      ok0 = vandq_u32(ok0, vcaleq_f32(H0, fmax));
      ok1 = vandq_u32(ok1, vcaleq_f32(H1, fmax));
    }
    if (vminvq_u32(vandq_u32(ok0, ok1)) == ~0u) continue;
    const NonFiniteScan part = scalar_kernel().scan_nonfinite(grad + start, residual + start, kBlock);
    if (scan.count == 0) scan.first = start + part.first;
    scan.count += part.count;
  }
  if (start < n) {
    const NonFiniteScan part = scalar_kernel().scan_nonfinite(grad + start, residual + start, n - start);
    if (part.count && scan.count == 0) scan.first = start + part.first;
    scan.count += part.count;
  }
  return scan;
}

uint32_t* select_bins_neon(const float* grad, float* residual, uint64_t n, uint32_t bin_size,
                           uint32_t index_base, uint32_t* out) {
  const float32x4_t zero = vdupq_n_f32(0.0f);
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    const uint64_t vec_len = len & ~uint64_t(7);
    const float* g = grad + start;
    float* r = residual + start;

    // FMAXNM returns the number when the other operand is a quiet NaN, matching the scalar kernel.
    float32x4_t max0 = zero, max1 = zero;
    for (uint64_t i = 0; i < vec_len; i += 8) {
      const float32x4_t G0 = vaddq_f32(vld1q_f32(r + i), vld1q_f32(g + i));
      const float32x4_t G1 = vaddq_f32(vld1q_f32(r + i + 4), vld1q_f32(g + i + 4));
      vst1q_f32(r + i, G0);
      vst1q_f32(r + i + 4, G1);
      max0 = vmaxnmq_f32(max0, vabsq_f32(G0));
      max1 = vmaxnmq_f32(max1, vabsq_f32(G1));
    }
    float bin_max = vmaxnmvq_f32(vmaxnmq_f32(max0, max1));
    for (uint64_t i = vec_len; i < len; ++i) {
      const float G = r[i] + g[i];
      r[i] = G;
      const float a = std::fabs(G);
      bin_max = a > bin_max ? a : bin_max;
    }

    const float32x4_t vbin_max = vdupq_n_f32(bin_max);
    const uint32_t bin_base = index_base + static_cast<uint32_t>(start);
    for (uint64_t i = 0; i < vec_len; i += 8) {
      const float32x4_t G0 = vld1q_f32(r + i), G1 = vld1q_f32(r + i + 4);
      const float32x4_t H0 = vaddq_f32(G0, vld1q_f32(g + i));
      const float32x4_t H1 = vaddq_f32(G1, vld1q_f32(g + i + 4));
      // G != 0 is "not (G == 0)", which is true for NaN as in C++.
      const uint32x4_t keep0 = vbicq_u32(vcageq_f32(H0, vbin_max), vceqq_f32(G0, zero));
      const uint32x4_t keep1 = vbicq_u32(vcageq_f32(H1, vbin_max), vceqq_f32(G1, zero));
      // Narrow 8 lane masks to one byte each: a single 64-bit test skips the common empty case.
      const uint8x8_t bytes = vmovn_u16(vcombine_u16(vmovn_u32(keep0), vmovn_u32(keep1)));
      uint64_t mask = vget_lane_u64(vreinterpret_u64_u8(bytes), 0);
      while (mask) {
        const unsigned lane = static_cast<unsigned>(__builtin_ctzll(mask)) >> 3;
        *out++ = bin_base + static_cast<uint32_t>(i) + lane;
        mask &= ~(uint64_t(0xFF) << (lane * 8));
      }
    }
    for (uint64_t i = vec_len; i < len; ++i) {
      const float G = r[i];
      const float H = G + g[i];
      if (std::fabs(H) >= bin_max && G != 0.0f) *out++ = bin_base + static_cast<uint32_t>(i);
    }
  }
  return out;
}

}  // namespace

const Kernel& neon_kernel() {
  static const Kernel kernel{"neon", scan_nonfinite_neon, select_bins_neon};
  return kernel;
}

}  // namespace adlcodec
