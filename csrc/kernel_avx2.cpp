// x86-64 AVX2 kernel; this file alone is compiled with -mavx2 and only called when the CPU has it.
#include <immintrin.h>

#include <cmath>

#include "kernels.h"

namespace adlcodec {
namespace {

inline __m256 abs_ps(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

// Nonzero if any lane of H = (r + g) + g is NaN or +-Inf: |H| <= FLT_MAX is false exactly then.
inline int nonfinite_mask(const float* g, const float* r) {
  const __m256 vg = _mm256_loadu_ps(g);
  const __m256 H = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(r), vg), vg);
  const __m256 finite = _mm256_cmp_ps(abs_ps(H), _mm256_set1_ps(3.40282347e+38f), _CMP_LE_OQ);
  return _mm256_movemask_ps(finite) ^ 0xFF;
}

NonFiniteScan scan_nonfinite_avx2(const float* grad, const float* residual, uint64_t n) {
  NonFiniteScan scan;
  constexpr uint64_t kBlock = 1024;  // clean blocks cost one branch; a dirty block is recounted exactly
  uint64_t start = 0;
  for (; start + kBlock <= n; start += kBlock) {
    int any = 0;
    for (uint64_t i = 0; i < kBlock; i += 32) {
      any |= nonfinite_mask(grad + start + i, residual + start + i) |
             nonfinite_mask(grad + start + i + 8, residual + start + i + 8) |
             nonfinite_mask(grad + start + i + 16, residual + start + i + 16) |
             nonfinite_mask(grad + start + i + 24, residual + start + i + 24);
    }
    if (!any) continue;
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

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

uint32_t* select_bins_avx2(const float* grad, float* residual, uint64_t n, uint32_t bin_size,
                           uint32_t index_base, uint32_t* out) {
  const __m256 zero = _mm256_setzero_ps();
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    const uint64_t vec_len = len & ~uint64_t(7);
    const float* g = grad + start;
    float* r = residual + start;

    // max_ps(a, m) returns m when a is NaN, matching the scalar `a > m ? a : m`.
    __m256 vmax = zero;
    for (uint64_t i = 0; i < vec_len; i += 8) {
      const __m256 G = _mm256_add_ps(_mm256_loadu_ps(r + i), _mm256_loadu_ps(g + i));
      _mm256_storeu_ps(r + i, G);
      vmax = _mm256_max_ps(abs_ps(G), vmax);
    }
    float bin_max = hmax(vmax);
    for (uint64_t i = vec_len; i < len; ++i) {
      const float G = r[i] + g[i];
      r[i] = G;
      const float a = std::fabs(G);
      bin_max = a > bin_max ? a : bin_max;
    }

    const __m256 vbin_max = _mm256_set1_ps(bin_max);
    const uint32_t bin_base = index_base + static_cast<uint32_t>(start);
    for (uint64_t i = 0; i < vec_len; i += 8) {
      const __m256 G = _mm256_loadu_ps(r + i);
      const __m256 H = _mm256_add_ps(G, _mm256_loadu_ps(g + i));
      const __m256 keep = _mm256_and_ps(_mm256_cmp_ps(abs_ps(H), vbin_max, _CMP_GE_OQ),
                                        _mm256_cmp_ps(G, zero, _CMP_NEQ_UQ));
      unsigned mask = static_cast<unsigned>(_mm256_movemask_ps(keep));
      while (mask) {
        *out++ = bin_base + static_cast<uint32_t>(i) + static_cast<uint32_t>(__builtin_ctz(mask));
        mask &= mask - 1;
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

const Kernel& avx2_kernel() {
  static const Kernel kernel{"avx2", scan_nonfinite_avx2, select_bins_avx2};
  return kernel;
}

}  // namespace adlcodec
