// Reference kernel: the definition every SIMD kernel must match bit for bit.
#include <cmath>

#include "kernels.h"

namespace adlcodec {
namespace {

NonFiniteScan scan_nonfinite_scalar(const float* grad, const float* residual, uint64_t n) {
  NonFiniteScan scan;
  for (uint64_t i = 0; i < n; ++i) {
    const float G = residual[i] + grad[i];
    const float H = G + grad[i];
    if (!std::isfinite(H)) {
      if (scan.count == 0) scan.first = i;
      ++scan.count;
    }
  }
  return scan;
}

uint32_t* select_bins_scalar(const float* grad, float* residual, uint64_t n, uint32_t bin_size,
                             uint32_t index_base, uint32_t* out) {
  for (uint64_t start = 0; start < n; start += bin_size) {
    const uint64_t len = (n - start < bin_size) ? n - start : bin_size;
    const float* g = grad + start;
    float* r = residual + start;
    float bin_max = 0.0f;
    for (uint64_t i = 0; i < len; ++i) {
      const float G = r[i] + g[i];
      r[i] = G;
      const float a = std::fabs(G);
      bin_max = a > bin_max ? a : bin_max;  // a NaN never wins, as in the SIMD kernels
    }
    for (uint64_t i = 0; i < len; ++i) {
      const float G = r[i];
      const float H = G + g[i];
      if (std::fabs(H) >= bin_max && G != 0.0f) *out++ = index_base + static_cast<uint32_t>(start + i);
    }
  }
  return out;
}

}  // namespace

const Kernel& scalar_kernel() {
  static const Kernel kernel{"scalar", scan_nonfinite_scalar, select_bins_scalar};
  return kernel;
}

}  // namespace adlcodec
