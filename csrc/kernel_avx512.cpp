// x86-64 AVX-512 kernel; this file alone is compiled with -mavx512f and only called when the CPU and
// the OS have it. Sixteen lanes with mask registers: a bin's partial last vector is a zero-masked load,
// and the selected lanes are packed by VPCOMPRESSD/VCOMPRESSPS (register forms: the memory forms are
// microcoded on AMD Zen 4) instead of AVX2's left-pack table. Bins of up to 64 elements, bin 50 the
// default among them, stay in four registers from the maximum to the selection.
#include <immintrin.h>

#include "kernels.h"
#include "position_code_impl.h"

namespace adlcodec {
namespace {

constexpr uint32_t kLargestFiniteBits = 0x7F7FFFFFu;
constexpr uint64_t kPrefetchElements = 1024;  // 4 KiB ahead in each stream

inline __m512 abs_ps(__m512 x) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}

// Every lane set to the largest lane of v; v holds no NaN, so the order of the maxima does not matter.
inline __m512 broadcast_max(__m512 v) {
  v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
}

inline __mmask16 lanes_below(uint64_t count) {  // the first min(count, 16) lanes
  return count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1u);
}

// Appends the lanes of `keep`, packed to the front; all 16 slots are stored (callers leave room) and
// the outputs advance by the count.
inline void append_selected(__m512 G, __m512i index, __mmask16 keep, uint32_t*& indices, float*& values) {
  _mm512_storeu_si512(indices, _mm512_maskz_compress_epi32(keep, index));
  _mm512_storeu_ps(values, _mm512_maskz_compress_ps(keep, G));
  const unsigned count = static_cast<unsigned>(_mm_popcnt_u32(keep));
  indices += count;
  values += count;
}

// Sets *nonfinite when the largest |H| bit pattern seen is above the largest finite float's.
inline void flag_nonfinite(__m512i largest_abs_h, bool* nonfinite) {
  if (_mm512_cmpgt_epu32_mask(largest_abs_h, _mm512_set1_epi32(static_cast<int>(kLargestFiniteBits))))
    *nonfinite = true;
}

// Selection of one vector: |H| >= bin maximum and G != 0 (lanes off the bin hold G = 0). The
// largest |H| bit pattern is kept for the finite check: NaN and infinity are above every finite one.
inline __mmask16 selected_lanes(__m512 G, __m512 g, __m512 bin_max, __m512i& largest_abs_h) {
  const __m512 abs_h = abs_ps(_mm512_add_ps(G, g));
  largest_abs_h = _mm512_max_epu32(largest_abs_h, _mm512_castps_si512(abs_h));
  return _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(abs_h, bin_max, _CMP_GE_OQ), G, _mm512_setzero_ps(),
                                 _CMP_NEQ_UQ);
}

// Bins of at most 16 * kVectors elements, held in registers between the two loops: g and r are read
// once. The running maximum starts from 0 and is always max_ps's second operand, which max_ps returns
// when the first is NaN: a NaN |G| never enters it, matching the scalar `a > m ? a : m`. Written in place, a bin's G is
// stored after the next bin is loaded: the next bin's first vector overlaps the last masked store,
// and a load cannot take its data from a masked store but waits for it to retire.
template <bool kWrite, int kVectors>
uint32_t* analyze_small_bins(const float* grad, const float* residual, float* out, uint64_t n, uint32_t bin_size,
                             uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i lane_order = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i largest_abs_h = _mm512_setzero_si512();
  __m512 pending[kVectors];
  __mmask16 pending_lanes[kVectors] = {};
  float* pending_at = nullptr;
  auto store_pending = [&] {
    if (pending_at)
      for (int j = 0; j < kVectors; ++j) _mm512_mask_storeu_ps(pending_at + 16 * j, pending_lanes[j], pending[j]);
  };
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    __m512 G[kVectors], g[kVectors];
    __mmask16 lanes[kVectors];
    const uint64_t bin_lanes = _bzhi_u64(~uint64_t(0), static_cast<unsigned>(len));  // len <= 64
    for (int j = 0; j < kVectors; ++j) {
      // The whole bin is read once, in order, and one line of each stream 4 KiB ahead is asked for per
      // vector: without it the encode of a 16M tensor waited on memory (measured 6 % slower than AVX2).
      _mm_prefetch(reinterpret_cast<const char*>(residual + start + 16 * j + kPrefetchElements), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(grad + start + 16 * j + kPrefetchElements), _MM_HINT_T0);
      lanes[j] = static_cast<__mmask16>(bin_lanes >> (16 * j));
      g[j] = _mm512_maskz_loadu_ps(lanes[j], grad + start + 16 * j);
      G[j] = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes[j], residual + start + 16 * j), g[j]);
    }
    if constexpr (kWrite) store_pending();
    __m512 bin_max = zero;
    for (int j = 0; j < kVectors; ++j) bin_max = _mm512_max_ps(abs_ps(G[j]), bin_max);
    bin_max = broadcast_max(bin_max);
    const __m512i base = _mm512_add_epi32(lane_order, _mm512_set1_epi32(static_cast<int>(index_base + start)));
    for (int j = 0; j < kVectors; ++j) {
      const __mmask16 keep = selected_lanes(G[j], g[j], bin_max, largest_abs_h);
      append_selected(G[j], _mm512_add_epi32(base, _mm512_set1_epi32(16 * j)), keep, indices, values);
    }
    if constexpr (kWrite) {
      for (int j = 0; j < kVectors; ++j) {
        pending[j] = G[j];
        pending_lanes[j] = lanes[j];
      }
      pending_at = out + start;
    }
  }
  if constexpr (kWrite) store_pending();
  flag_nonfinite(largest_abs_h, nonfinite);
  return indices;
}

// Larger bins: loop 1 finds the maximum, loop 2 reads the bin again from L1 and selects.
template <bool kWrite>
uint32_t* analyze_large_bins(const float* grad, const float* residual, float* out, uint64_t n, uint32_t bin_size,
                             uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite) {
  const __m512i lane_order = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i largest_abs_h = _mm512_setzero_si512();
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    const uint64_t vec_len = len & ~uint64_t(15);
    const __mmask16 rest = lanes_below(len - vec_len);
    const float* g = grad + start;
    const float* r = residual + start;
    __m512 max0 = _mm512_setzero_ps(), max1 = max0;
    uint64_t i = 0;
    for (; i + 32 <= vec_len; i += 32) {
      _mm_prefetch(reinterpret_cast<const char*>(r + i + kPrefetchElements), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(g + i + kPrefetchElements), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(r + i + 16 + kPrefetchElements), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(g + i + 16 + kPrefetchElements), _MM_HINT_T0);
      max0 = _mm512_max_ps(abs_ps(_mm512_add_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(g + i))), max0);
      max1 = _mm512_max_ps(abs_ps(_mm512_add_ps(_mm512_loadu_ps(r + i + 16), _mm512_loadu_ps(g + i + 16))), max1);
    }
    if (i < vec_len) max0 = _mm512_max_ps(abs_ps(_mm512_add_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(g + i))), max0);
    if (rest) {
      const __m512 G = _mm512_add_ps(_mm512_maskz_loadu_ps(rest, r + vec_len), _mm512_maskz_loadu_ps(rest, g + vec_len));
      max1 = _mm512_max_ps(abs_ps(G), max1);
    }
    const __m512 bin_max = broadcast_max(_mm512_max_ps(max0, max1));
    const __m512i base = _mm512_add_epi32(lane_order, _mm512_set1_epi32(static_cast<int>(index_base + start)));
    float* const o = kWrite ? out + start : nullptr;
    for (i = 0; i < vec_len; i += 16) {
      const __m512 vg = _mm512_loadu_ps(g + i);
      const __m512 G = _mm512_add_ps(_mm512_loadu_ps(r + i), vg);
      const __mmask16 keep = selected_lanes(G, vg, bin_max, largest_abs_h);
      append_selected(G, _mm512_add_epi32(base, _mm512_set1_epi32(static_cast<int>(i))), keep, indices, values);
      if constexpr (kWrite) _mm512_storeu_ps(o + i, G);
    }
    if (rest) {
      const __m512 vg = _mm512_maskz_loadu_ps(rest, g + vec_len);
      const __m512 G = _mm512_add_ps(_mm512_maskz_loadu_ps(rest, r + vec_len), vg);
      const __mmask16 keep = selected_lanes(G, vg, bin_max, largest_abs_h);
      append_selected(G, _mm512_add_epi32(base, _mm512_set1_epi32(static_cast<int>(vec_len))), keep, indices, values);
      if constexpr (kWrite) {
        // Lane by lane, not a masked store: in place, the next bin's first load overlaps these bytes.
        alignas(64) float lanes[16];
        _mm512_store_ps(lanes, G);
        for (uint64_t k = 0; k < len - vec_len; ++k) o[vec_len + k] = lanes[k];
      }
    }
  }
  flag_nonfinite(largest_abs_h, nonfinite);
  return indices;
}

template <bool kWrite>
uint32_t* analyze_bins(const float* grad, const float* residual, float* out, uint64_t n, uint32_t bin_size,
                       uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite) {
  switch ((bin_size + 15) / 16) {
    case 1:
      return analyze_small_bins<kWrite, 1>(grad, residual, out, n, bin_size, index_base, indices, values, nonfinite);
    case 2:
      return analyze_small_bins<kWrite, 2>(grad, residual, out, n, bin_size, index_base, indices, values, nonfinite);
    case 3:
      return analyze_small_bins<kWrite, 3>(grad, residual, out, n, bin_size, index_base, indices, values, nonfinite);
    case 4:
      return analyze_small_bins<kWrite, 4>(grad, residual, out, n, bin_size, index_base, indices, values, nonfinite);
    default:
      return analyze_large_bins<kWrite>(grad, residual, out, n, bin_size, index_base, indices, values, nonfinite);
  }
}

void accumulate_avx512(const float* grad, const float* residual, float* out, uint64_t n) {
  uint64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_add_ps(_mm512_loadu_ps(residual + i), _mm512_loadu_ps(grad + i)));
  const __mmask16 rest = lanes_below(n - i);
  if (rest)
    _mm512_mask_storeu_ps(out + i, rest,
                          _mm512_add_ps(_mm512_maskz_loadu_ps(rest, residual + i), _mm512_maskz_loadu_ps(rest, grad + i)));
}

}  // namespace

const Kernel& avx512_kernel() {
  static const Kernel kernel{"avx512", analyze_bins_either<analyze_bins<false>, analyze_bins<true>>,
                             accumulate_avx512, position_code::encode, position_code::decode,
                             position_code::decode_split};
  return kernel;
}

}  // namespace adlcodec
