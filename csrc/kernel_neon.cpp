// aarch64 NEON kernel, written for the Cortex-A53: in-order, one 128-bit NEON op or load per cycle,
// 4-6 cycles from a load or NEON op to its first use. Every loop is software-pipelined (a block's
// loads and adds are issued one iteration before their results are used) so no op waits on the
// previous one, and the common "nothing selected here" step costs one compare per vector, three
// narrows and one branch per 16 elements. Bins whose length is not a multiple of 4 end in a masked
// vector that reads past the bin (inside the span), not in a scalar loop.
#include <arm_neon.h>

#include <cmath>

#include "kernels.h"
#include "position_code_impl.h"

namespace adlcodec {
namespace {

constexpr float kLargestFinite = 3.40282347e+38f;
constexpr uint64_t kBlock = 16;  // elements per unrolled step: 4 vectors

// &kLaneValid[4 - k] loads a mask whose first k lanes are set.
alignas(16) constexpr uint32_t kLaneValid[8] = {~0u, ~0u, ~0u, ~0u, 0u, 0u, 0u, 0u};

inline uint32x4_t first_lanes(uint64_t k) { return vld1q_u32(kLaneValid + 4 - k); }

// The scalar kernel's own test for one element, so candidates are decided bit for bit like it.
// Stores unconditionally and advances by the outcome: callers leave room for n entries.
inline void select_lanes(uint64_t candidates, unsigned lane_shift, const float* r, const float* g,
                         uint32_t base, float bin_max, uint32_t*& indices, float*& values, bool& finite) {
  while (candidates) {
    const unsigned lane = static_cast<unsigned>(__builtin_ctzll(candidates)) >> lane_shift;
    candidates &= candidates - 1;
    const float G = r[lane] + g[lane];
    const float H = G + g[lane];
    finite &= std::fabs(H) <= kLargestFinite;
    const bool keep = std::fabs(H) >= bin_max && G != 0.0f;
    *indices = base + lane;
    *values = G;
    indices += keep;
    values += keep;
  }
}

// |b| > |a| as one FACGT: GCC expands vcagtq_f32 to two FABS and an FCMGT, and does not hoist
// |bin_max| out of the loop.
inline uint32x4_t abs_greater(float32x4_t b, float32x4_t a) {
  uint32x4_t out;
  __asm__("facgt %0.4s, %1.4s, %2.4s" : "=w"(out) : "w"(b), "w"(a));
  return out;
}

// A nibble per lane of 16, all ones where |H| < bin_max; the other lanes are selected, ties or NaN.
// |H| < bin_max (false for NaN) also proves H finite, so in the common all-below case the finite
// check costs nothing. uzp1 keeps each 32-bit mask's low half, then low byte; shrn #4 leaves a nibble
// per byte lane in 64 bits.
inline uint64_t below_16(float32x4_t bin_max, float32x4_t H0, float32x4_t H1, float32x4_t H2, float32x4_t H3) {
  const uint16x8_t b01 = vuzp1q_u16(vreinterpretq_u16_u32(abs_greater(bin_max, H0)),
                                    vreinterpretq_u16_u32(abs_greater(bin_max, H1)));
  const uint16x8_t b23 = vuzp1q_u16(vreinterpretq_u16_u32(abs_greater(bin_max, H2)),
                                    vreinterpretq_u16_u32(abs_greater(bin_max, H3)));
  const uint8x16_t below = vuzp1q_u8(vreinterpretq_u8_u16(b01), vreinterpretq_u8_u16(b23));
  const uint8x8_t nibbles = vshrn_n_u16(vreinterpretq_u16_u8(below), 4);
  return vget_lane_u64(vreinterpret_u64_u8(nibbles), 0);
}

// Out of line, so each variant is a function of its own that bench/a53/mca.py can find by name; it
// runs once per chunk of thousands of elements.
template <bool kWrite>
[[gnu::noinline]] uint32_t* analyze_bins(const float* grad, const float* residual, float* out, uint64_t n, uint32_t bin_size,
                       uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite) {
  bool all_finite = true;
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    const uint64_t blocks_end = len & ~(kBlock - 1);
    // The bin's last vector may read up to 3 elements past the bin when they are inside the span.
    const uint64_t vectors_end = (start + ((len + 3) & ~uint64_t(3)) <= n) ? len : (len & ~uint64_t(3));
    const float* g = grad + start;
    const float* r = residual + start;
    float* const o = kWrite ? out + start : nullptr;
    const uint32_t bin_base = index_base + static_cast<uint32_t>(start);

    // Loop 1: bin_max = max |r + g|. FMAXNM returns the number when the other operand is a quiet NaN
    // (r + g is never a signalling one), matching the scalar `a > m ? a : m`. Three stages: this
    // step's loads, the previous step's adds, the one before's abs + max.
    float32x4_t m0 = vdupq_n_f32(0.0f), m1 = m0, m2 = m0, m3 = m0;
    if (blocks_end) {
      float32x4_t G0 = vaddq_f32(vld1q_f32(r), vld1q_f32(g)), G1 = vaddq_f32(vld1q_f32(r + 4), vld1q_f32(g + 4));
      float32x4_t G2 = vaddq_f32(vld1q_f32(r + 8), vld1q_f32(g + 8));
      float32x4_t G3 = vaddq_f32(vld1q_f32(r + 12), vld1q_f32(g + 12));
      for (uint64_t i = kBlock; i < blocks_end; i += kBlock) {  // loop 1, steady state
        const float32x4_t r0 = vld1q_f32(r + i), r1 = vld1q_f32(r + i + 4);
        const float32x4_t r2 = vld1q_f32(r + i + 8), r3 = vld1q_f32(r + i + 12);
        const float32x4_t g0 = vld1q_f32(g + i), g1 = vld1q_f32(g + i + 4);
        const float32x4_t g2 = vld1q_f32(g + i + 8), g3 = vld1q_f32(g + i + 12);
        m0 = vmaxnmq_f32(m0, vabsq_f32(G0));
        m1 = vmaxnmq_f32(m1, vabsq_f32(G1));
        m2 = vmaxnmq_f32(m2, vabsq_f32(G2));
        m3 = vmaxnmq_f32(m3, vabsq_f32(G3));
        G0 = vaddq_f32(r0, g0);
        G1 = vaddq_f32(r1, g1);
        G2 = vaddq_f32(r2, g2);
        G3 = vaddq_f32(r3, g3);
      }
      m0 = vmaxnmq_f32(m0, vabsq_f32(G0));
      m1 = vmaxnmq_f32(m1, vabsq_f32(G1));
      m2 = vmaxnmq_f32(m2, vabsq_f32(G2));
      m3 = vmaxnmq_f32(m3, vabsq_f32(G3));
    }
    for (uint64_t i = blocks_end; i < vectors_end; i += 4) {
      // Lanes past the bin become +0, which never raises a maximum that starts at 0.
      const uint32x4_t abs_bits = vreinterpretq_u32_f32(vabsq_f32(vaddq_f32(vld1q_f32(r + i), vld1q_f32(g + i))));
      m1 = vmaxnmq_f32(m1, vreinterpretq_f32_u32(vandq_u32(abs_bits, first_lanes(len - i < 4 ? len - i : 4))));
    }
    float bin_max = vmaxnmvq_f32(vmaxnmq_f32(vmaxnmq_f32(m0, m1), vmaxnmq_f32(m2, m3)));
    for (uint64_t i = vectors_end; i < len; ++i) {
      const float a = std::fabs(r[i] + g[i]);
      bin_max = a > bin_max ? a : bin_max;
    }

    // Loop 2: select |H| >= bin_max and G != 0. Two stages: this step's loads and adds, the previous
    // step's compare, narrow and branch; lanes that are not below bin_max go to select_lanes. kWrite:
    // the previous step's G is stored after its select_lanes, which reads r again (r may be `out`).
    const float32x4_t vbin_max = vdupq_n_f32(bin_max);
    if (blocks_end) {
      float32x4_t g0 = vld1q_f32(g), g1 = vld1q_f32(g + 4), g2 = vld1q_f32(g + 8), g3 = vld1q_f32(g + 12);
      float32x4_t G0 = vaddq_f32(vld1q_f32(r), g0), G1 = vaddq_f32(vld1q_f32(r + 4), g1);
      float32x4_t G2 = vaddq_f32(vld1q_f32(r + 8), g2), G3 = vaddq_f32(vld1q_f32(r + 12), g3);
      float32x4_t H0 = vaddq_f32(G0, g0), H1 = vaddq_f32(G1, g1), H2 = vaddq_f32(G2, g2), H3 = vaddq_f32(G3, g3);
      for (uint64_t i = kBlock; i < blocks_end; i += kBlock) {  // loop 2, steady state
        g0 = vld1q_f32(g + i), g1 = vld1q_f32(g + i + 4), g2 = vld1q_f32(g + i + 8), g3 = vld1q_f32(g + i + 12);
        const float32x4_t r0 = vld1q_f32(r + i), r1 = vld1q_f32(r + i + 4);
        const float32x4_t r2 = vld1q_f32(r + i + 8), r3 = vld1q_f32(r + i + 12);
        const uint64_t below = below_16(vbin_max, H0, H1, H2, H3);
        const float32x4_t next0 = vaddq_f32(r0, g0), next1 = vaddq_f32(r1, g1);
        const float32x4_t next2 = vaddq_f32(r2, g2), next3 = vaddq_f32(r3, g3);
        H0 = vaddq_f32(next0, g0);
        H1 = vaddq_f32(next1, g1);
        H2 = vaddq_f32(next2, g2);
        H3 = vaddq_f32(next3, g3);
        const uint64_t prev = i - kBlock;
        if (__builtin_expect(below != ~uint64_t(0), 0)) {
          select_lanes(~below & 0x8888888888888888ull, 2, r + prev, g + prev, bin_base + static_cast<uint32_t>(prev), bin_max,
                       indices, values, all_finite);
        }
        if constexpr (kWrite) {
          vst1q_f32(o + prev, G0);
          vst1q_f32(o + prev + 4, G1);
          vst1q_f32(o + prev + 8, G2);
          vst1q_f32(o + prev + 12, G3);
        }
        G0 = next0, G1 = next1, G2 = next2, G3 = next3;
      }
      const uint64_t last = blocks_end - kBlock;
      select_lanes(~below_16(vbin_max, H0, H1, H2, H3) & 0x8888888888888888ull, 2, r + last, g + last,
                   bin_base + static_cast<uint32_t>(last), bin_max, indices, values, all_finite);
      if constexpr (kWrite) {
        vst1q_f32(o + last, G0);
        vst1q_f32(o + last + 4, G1);
        vst1q_f32(o + last + 8, G2);
        vst1q_f32(o + last + 12, G3);
      }
    }
    for (uint64_t i = blocks_end; i < vectors_end; i += 4) {
      const float32x4_t gv = vld1q_f32(g + i);
      const float32x4_t G = vaddq_f32(vld1q_f32(r + i), gv);
      const float32x4_t H = vaddq_f32(G, gv);
      // Lanes past the bin count as below.
      const uint64_t lanes = len - i < 4 ? len - i : 4;
      const uint32x4_t below = vornq_u32(abs_greater(vbin_max, H), first_lanes(lanes));
      const uint64_t candidates = ~vget_lane_u64(vreinterpret_u64_u16(vmovn_u32(below)), 0) & 0x8000800080008000ull;
      select_lanes(candidates, 4, r + i, g + i, bin_base + static_cast<uint32_t>(i), bin_max, indices, values,
                   all_finite);
      if constexpr (kWrite) {
        if (lanes == 4) {
          vst1q_f32(o + i, G);
        } else {  // nothing past the bin: with out == residual that is the next bin's input
          float lane_values[4];
          vst1q_f32(lane_values, G);
          for (uint64_t k = 0; k < lanes; ++k) o[i + k] = lane_values[k];
        }
      }
    }
    for (uint64_t i = vectors_end; i < len; ++i) {
      const float G = r[i] + g[i];
      const float H = G + g[i];
      all_finite &= std::fabs(H) <= kLargestFinite;
      if (std::fabs(H) >= bin_max && G != 0.0f) {
        *indices++ = bin_base + static_cast<uint32_t>(i);
        *values++ = G;
      }
      if constexpr (kWrite) o[i] = G;
    }
  }
  if (!all_finite) *nonfinite = true;
  return indices;
}

void accumulate_neon(const float* grad, const float* residual, float* out, uint64_t n) {
  uint64_t i = 0;
  // Two stages: this step's loads, the previous step's adds and stores.
  if (n >= 16) {
    float32x4_t s0 = vaddq_f32(vld1q_f32(residual), vld1q_f32(grad));
    float32x4_t s1 = vaddq_f32(vld1q_f32(residual + 4), vld1q_f32(grad + 4));
    float32x4_t s2 = vaddq_f32(vld1q_f32(residual + 8), vld1q_f32(grad + 8));
    float32x4_t s3 = vaddq_f32(vld1q_f32(residual + 12), vld1q_f32(grad + 12));
    for (i = 16; i + 16 <= n; i += 16) {
      const float32x4_t r0 = vld1q_f32(residual + i), r1 = vld1q_f32(residual + i + 4);
      const float32x4_t r2 = vld1q_f32(residual + i + 8), r3 = vld1q_f32(residual + i + 12);
      const float32x4_t g0 = vld1q_f32(grad + i), g1 = vld1q_f32(grad + i + 4);
      const float32x4_t g2 = vld1q_f32(grad + i + 8), g3 = vld1q_f32(grad + i + 12);
      vst1q_f32(out + i - 16, s0);
      vst1q_f32(out + i - 12, s1);
      vst1q_f32(out + i - 8, s2);
      vst1q_f32(out + i - 4, s3);
      s0 = vaddq_f32(r0, g0);
      s1 = vaddq_f32(r1, g1);
      s2 = vaddq_f32(r2, g2);
      s3 = vaddq_f32(r3, g3);
    }
    vst1q_f32(out + i - 16, s0);
    vst1q_f32(out + i - 12, s1);
    vst1q_f32(out + i - 8, s2);
    vst1q_f32(out + i - 4, s3);
  }
  for (; i < n; ++i) out[i] = residual[i] + grad[i];
}

}  // namespace

const Kernel& neon_kernel() {
  static const Kernel kernel{"neon", analyze_bins_either<analyze_bins<false>, analyze_bins<true>>, accumulate_neon,
                             position_code::encode, position_code::decode,
                             position_code::decode_split};
  return kernel;
}

}  // namespace adlcodec
