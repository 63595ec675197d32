// The per-target kernels behind one dispatch table (one file per target, as in c-blosc2's shuffle).
#pragma once

#include <cstdint>

namespace adlcodec {

struct NonFiniteScan {
  uint64_t count = 0;
  uint64_t first = 0;
};

struct Kernel {
  const char* name;
  // Counts elements whose H = (r + g) + g is not finite; that covers NaN/Inf in g or r and
  // float32 overflow of the sums. Reads only.
  NonFiniteScan (*scan_nonfinite)(const float* grad, const float* residual, uint64_t n);
  // The dense pass over whole bins starting at element 0 of the span: r <- G = r + g, and appends
  // (index_base + i) for every selected element, i.e. |G_i + g_i| >= max over the bin of |G| and
  // G_i != 0. Returns the new end of `out`, which must have room for n entries.
  uint32_t* (*select_bins)(const float* grad, float* residual, uint64_t n, uint32_t bin_size,
                           uint32_t index_base, uint32_t* out);
};

const Kernel& scalar_kernel();
#if defined(ADLCODEC_HAVE_AVX2)
const Kernel& avx2_kernel();
#endif
#if defined(ADLCODEC_HAVE_NEON)
const Kernel& neon_kernel();
#endif

const Kernel& active_kernel();

}  // namespace adlcodec
