// x86-64 AVX2 kernel; this file alone is compiled with -mavx2 and only called when the CPU has it.
#include <immintrin.h>

#include <cmath>

#include "kernels.h"
#include "position_code_impl.h"

namespace adlcodec {
namespace {

constexpr uint64_t kPrefetchElements = 1024;  // 4 KiB ahead in each stream

inline __m256 abs_ps(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

// For each 8-bit lane mask, the lane numbers of its set bits, packed to the front: a left-pack
// permutation, so selected elements are stored without a data-dependent branch.
struct LeftPackTable {
  alignas(32) uint32_t lanes[256][8];
  constexpr LeftPackTable() : lanes{} {
    for (unsigned mask = 0; mask < 256; ++mask) {
      unsigned count = 0;
      for (unsigned lane = 0; lane < 8; ++lane)
        if (mask & (1u << lane)) lanes[mask][count++] = lane;
    }
  }
};
constexpr LeftPackTable kLeftPack{};

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// Lanes [0, count) active: a bin's last partial group is processed as a vector whose other lanes
// read as 0, and G = 0 neither raises the bin maximum nor is ever selected.
inline __m256i first_lanes(uint64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Appends the selected lanes of one group of 8, left-packed. Whether a group holds a selected element
// is a coin flip at 3-10 % density, so all 8 slots are stored unconditionally (callers leave room)
// and the outputs advance by the count.
inline void append_selected(__m256 G, __m256 keep, uint32_t first_index, uint32_t*& indices, float*& values) {
  const unsigned mask = static_cast<unsigned>(_mm256_movemask_ps(keep));
  const __m256i order = _mm256_load_si256(reinterpret_cast<const __m256i*>(kLeftPack.lanes[mask]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(indices),
                      _mm256_add_epi32(order, _mm256_set1_epi32(static_cast<int>(first_index))));
  _mm256_storeu_ps(values, _mm256_permutevar8x32_ps(G, order));
  const unsigned count = static_cast<unsigned>(__builtin_popcount(mask));
  indices += count;
  values += count;
}

template <bool kWrite>
uint32_t* analyze_bins(const float* grad, const float* residual, float* out, uint64_t n, uint32_t bin_size,
                       uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 largest = _mm256_set1_ps(3.40282347e+38f);
  __m256 finite = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    const uint64_t vec_len = len & ~uint64_t(7);
    const uint64_t rest = len - vec_len;
    const __m256i rest_lanes = first_lanes(rest);
    const float* g = grad + start;
    const float* r = residual + start;
    // Two accumulators halve the add -> max dependency chain. max_ps(a, m) returns m when a is
    // NaN, matching the scalar `a > m ? a : m`.
    __m256 max0 = zero, max1 = zero;
    uint64_t i = 0;
    for (; i + 16 <= vec_len; i += 16) {
      // One line of each stream, 4 KiB ahead: the bin-by-bin access pattern (read a bin, read it
      // again from L1) leaves the hardware prefetcher behind, and this loop waits on memory.
      _mm_prefetch(reinterpret_cast<const char*>(r + i + kPrefetchElements), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(g + i + kPrefetchElements), _MM_HINT_T0);
      const __m256 G0 = _mm256_add_ps(_mm256_loadu_ps(r + i), _mm256_loadu_ps(g + i));
      const __m256 G1 = _mm256_add_ps(_mm256_loadu_ps(r + i + 8), _mm256_loadu_ps(g + i + 8));
      max0 = _mm256_max_ps(abs_ps(G0), max0);
      max1 = _mm256_max_ps(abs_ps(G1), max1);
    }
    if (i < vec_len) {
      const __m256 G0 = _mm256_add_ps(_mm256_loadu_ps(r + i), _mm256_loadu_ps(g + i));
      max0 = _mm256_max_ps(abs_ps(G0), max0);
    }
    if (rest) {
      const __m256 G = _mm256_add_ps(_mm256_maskload_ps(r + vec_len, rest_lanes), _mm256_maskload_ps(g + vec_len, rest_lanes));
      max1 = _mm256_max_ps(abs_ps(G), max1);
    }
    const __m256 vbin_max = _mm256_set1_ps(hmax(_mm256_max_ps(max0, max1)));

    const uint32_t bin_base = index_base + static_cast<uint32_t>(start);
    auto select = [&](__m256 vg, __m256 G, uint64_t at) {
      const __m256 absH = abs_ps(_mm256_add_ps(G, vg));
      finite = _mm256_and_ps(finite, _mm256_cmp_ps(absH, largest, _CMP_LE_OQ));
      const __m256 keep = _mm256_and_ps(_mm256_cmp_ps(absH, vbin_max, _CMP_GE_OQ), _mm256_cmp_ps(G, zero, _CMP_NEQ_UQ));
      append_selected(G, keep, bin_base + static_cast<uint32_t>(at), indices, values);
    };
    float* const o = kWrite ? out + start : nullptr;
    for (i = 0; i < vec_len; i += 8) {
      const __m256 vg = _mm256_loadu_ps(g + i);
      const __m256 G = _mm256_add_ps(_mm256_loadu_ps(r + i), vg);
      select(vg, G, i);
      if constexpr (kWrite) _mm256_storeu_ps(o + i, G);
    }
    if (rest) {
      const __m256 vg = _mm256_maskload_ps(g + vec_len, rest_lanes);
      const __m256 G = _mm256_add_ps(_mm256_maskload_ps(r + vec_len, rest_lanes), vg);
      select(vg, G, vec_len);
      if constexpr (kWrite) {
        // Lane by lane, not VMASKMOVPS: in place, the next bin's first loads read the rest of these 32
        // bytes, and a load overlapping a masked store waits for it to retire (measured: the in-place
        // unchecked encode was slower than the read-only one).
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, G);
        for (uint64_t k = 0; k < len - vec_len; ++k) o[vec_len + k] = lanes[k];
      }
    }
  }
  if (_mm256_movemask_ps(finite) != 0xFF) *nonfinite = true;
  return indices;
}

void accumulate_avx2(const float* grad, const float* residual, float* out, uint64_t n) {
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(residual + i), _mm256_loadu_ps(grad + i)));
  for (; i < n; ++i) out[i] = residual[i] + grad[i];
}

}  // namespace

const Kernel& avx2_kernel() {
  static const Kernel kernel{"avx2", analyze_bins_either<analyze_bins<false>, analyze_bins<true>>, accumulate_avx2,
                             position_code::encode, position_code::decode,
                             position_code::decode_split};
  return kernel;
}

}  // namespace adlcodec
