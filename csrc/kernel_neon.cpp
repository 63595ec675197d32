// aarch64 NEON kernel, written for the Cortex-A53 (in-order, dual issue): two independent
// accumulators hide the add -> abs -> max latency chain; FACGE does |H| >= max in one instruction.
#include <arm_neon.h>

#include <cmath>

#include "kernels.h"

namespace adlcodec {
namespace {

uint32_t* analyze_bins_neon(const float* grad, const float* residual, uint64_t n, uint32_t bin_size,
                            uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite) {
  const float32x4_t zero = vdupq_n_f32(0.0f);
  const float32x4_t largest = vdupq_n_f32(3.40282347e+38f);
  uint32x4_t finite = vdupq_n_u32(~0u);
  bool tail_finite = true;
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    const uint64_t vec_len = len & ~uint64_t(7);
    const float* g = grad + start;
    const float* r = residual + start;

    // FMAXNM returns the number when the other operand is a quiet NaN, matching the scalar kernel.
    // 16 elements and four maxima per step: the A53 issues in order, so one step's load -> add ->
    // abs -> max chain (~22 cycles in its model) has to be hidden behind the other three chains.
    float32x4_t max0 = zero, max1 = zero, max2 = zero, max3 = zero;
    const uint64_t wide_len = len & ~uint64_t(15);
    for (uint64_t i = 0; i < wide_len; i += 16) {
      const float32x4_t r0 = vld1q_f32(r + i), r1 = vld1q_f32(r + i + 4);
      const float32x4_t r2 = vld1q_f32(r + i + 8), r3 = vld1q_f32(r + i + 12);
      const float32x4_t g0 = vld1q_f32(g + i), g1 = vld1q_f32(g + i + 4);
      const float32x4_t g2 = vld1q_f32(g + i + 8), g3 = vld1q_f32(g + i + 12);
      max0 = vmaxnmq_f32(max0, vabsq_f32(vaddq_f32(r0, g0)));
      max1 = vmaxnmq_f32(max1, vabsq_f32(vaddq_f32(r1, g1)));
      max2 = vmaxnmq_f32(max2, vabsq_f32(vaddq_f32(r2, g2)));
      max3 = vmaxnmq_f32(max3, vabsq_f32(vaddq_f32(r3, g3)));
    }
    if (wide_len < vec_len) {
      max0 = vmaxnmq_f32(max0, vabsq_f32(vaddq_f32(vld1q_f32(r + wide_len), vld1q_f32(g + wide_len))));
      max1 = vmaxnmq_f32(max1, vabsq_f32(vaddq_f32(vld1q_f32(r + wide_len + 4), vld1q_f32(g + wide_len + 4))));
    }
    float bin_max = vmaxnmvq_f32(vmaxnmq_f32(vmaxnmq_f32(max0, max1), vmaxnmq_f32(max2, max3)));
    for (uint64_t i = vec_len; i < len; ++i) {
      const float a = std::fabs(r[i] + g[i]);
      bin_max = a > bin_max ? a : bin_max;
    }

    const float32x4_t vbin_max = vdupq_n_f32(bin_max);
    const uint32_t bin_base = index_base + static_cast<uint32_t>(start);
    for (uint64_t i = 0; i < vec_len; i += 8) {
      const float32x4_t g0 = vld1q_f32(g + i), g1 = vld1q_f32(g + i + 4);
      const float32x4_t G0 = vaddq_f32(vld1q_f32(r + i), g0);
      const float32x4_t G1 = vaddq_f32(vld1q_f32(r + i + 4), g1);
      const float32x4_t H0 = vaddq_f32(G0, g0), H1 = vaddq_f32(G1, g1);
      // |H| < bin_max in all 8 lanes (false for NaN) means nothing is selected and every H is
      // finite: one compare per vector instead of three in the common case.
      const uint32x4_t below = vandq_u32(vcagtq_f32(vbin_max, H0), vcagtq_f32(vbin_max, H1));
      if (vget_lane_u64(vreinterpret_u64_u16(vmovn_u32(below)), 0) == ~uint64_t(0)) continue;
      finite = vandq_u32(finite, vandq_u32(vcaleq_f32(H0, largest), vcaleq_f32(H1, largest)));
      // G != 0 is "not (G == 0)", which is true for NaN as in C++.
      const uint32x4_t keep0 = vbicq_u32(vcageq_f32(H0, vbin_max), vceqq_f32(G0, zero));
      const uint32x4_t keep1 = vbicq_u32(vcageq_f32(H1, vbin_max), vceqq_f32(G1, zero));
      // Narrow 8 lane masks to one byte each: a single 64-bit test skips the common empty case.
      const uint8x8_t bytes = vmovn_u16(vcombine_u16(vmovn_u32(keep0), vmovn_u32(keep1)));
      uint64_t mask = vget_lane_u64(vreinterpret_u64_u8(bytes), 0);
      while (mask) {
        const unsigned lane = static_cast<unsigned>(__builtin_ctzll(mask)) >> 3;
        *indices++ = bin_base + static_cast<uint32_t>(i) + lane;
        *values++ = r[i + lane] + g[i + lane];
        mask &= ~(uint64_t(0xFF) << (lane * 8));
      }
    }
    for (uint64_t i = vec_len; i < len; ++i) {
      const float G = r[i] + g[i];
      const float H = G + g[i];
      tail_finite &= std::fabs(H) <= 3.40282347e+38f;
      if (std::fabs(H) >= bin_max && G != 0.0f) {
        *indices++ = bin_base + static_cast<uint32_t>(i);
        *values++ = G;
      }
    }
  }
  if (vminvq_u32(finite) != ~0u || !tail_finite) *nonfinite = true;
  return indices;
}

void accumulate_neon(const float* grad, float* residual, uint64_t n) {
  uint64_t i = 0;
  // All loads of a 16-element step first: an in-order core stalls at the first add that waits.
  for (; i + 16 <= n; i += 16) {
    const float32x4_t r0 = vld1q_f32(residual + i), r1 = vld1q_f32(residual + i + 4);
    const float32x4_t r2 = vld1q_f32(residual + i + 8), r3 = vld1q_f32(residual + i + 12);
    const float32x4_t g0 = vld1q_f32(grad + i), g1 = vld1q_f32(grad + i + 4);
    const float32x4_t g2 = vld1q_f32(grad + i + 8), g3 = vld1q_f32(grad + i + 12);
    vst1q_f32(residual + i, vaddq_f32(r0, g0));
    vst1q_f32(residual + i + 4, vaddq_f32(r1, g1));
    vst1q_f32(residual + i + 8, vaddq_f32(r2, g2));
    vst1q_f32(residual + i + 12, vaddq_f32(r3, g3));
  }
  for (; i < n; ++i) residual[i] = residual[i] + grad[i];
}

}  // namespace

const Kernel& neon_kernel() {
  static const Kernel kernel{"neon", analyze_bins_neon, accumulate_neon};
  return kernel;
}

}  // namespace adlcodec
