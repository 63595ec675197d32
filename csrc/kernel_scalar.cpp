// Reference kernel: the definition every SIMD kernel must match bit for bit.
#include <cmath>

#include "kernels.h"
#include "position_code_impl.h"

namespace adlcodec {
namespace {

// Out of line, so each variant is a function of its own that bench/a53/mca.py can find by name; it
// runs once per chunk of thousands of elements.
template <bool kWrite>
[[gnu::noinline]] uint32_t* analyze_bins(const float* grad, const float* residual, float* out, uint64_t n, uint32_t bin_size,
                       uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite) {
  bool all_finite = true;
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    const float* g = grad + start;
    const float* r = residual + start;
    float bin_max = 0.0f;
    for (uint64_t i = 0; i < len; ++i) {
      const float a = std::fabs(r[i] + g[i]);
      bin_max = a > bin_max ? a : bin_max;  // a NaN never wins, as in the SIMD kernels
    }
    for (uint64_t i = 0; i < len; ++i) {
      const float G = r[i] + g[i];
      const float H = G + g[i];
      all_finite &= std::fabs(H) <= 3.40282347e+38f;  // false for NaN and +-inf
      if (std::fabs(H) >= bin_max && G != 0.0f) {
        *indices++ = index_base + static_cast<uint32_t>(start + i);
        *values++ = G;
      }
      if constexpr (kWrite) out[start + i] = G;
    }
  }
  if (!all_finite) *nonfinite = true;
  return indices;
}

void accumulate_scalar(const float* grad, const float* residual, float* out, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) out[i] = residual[i] + grad[i];
}

}  // namespace

const Kernel& scalar_kernel() {
  static const Kernel kernel{"scalar", analyze_bins_either<analyze_bins<false>, analyze_bins<true>>, accumulate_scalar,
                             position_code::encode, position_code::decode,
                             position_code::decode_split};
  return kernel;
}

}  // namespace adlcodec
