// The per-target kernels behind one dispatch table (one file per target, as in c-blosc2's shuffle).
#pragma once

#include <cstddef>
#include <cstdint>

#include "position_code.h"

namespace adlcodec {

// The signature of Kernel::analyze_bins (below).
using AnalyzeBins = uint32_t*(const float* grad, const float* residual, float* out, uint64_t n, uint32_t bin_size,
                              uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite);

struct Kernel {
  const char* name;
  // Reads whole bins starting at element 0 of the span: for each element G = r + g and H = G + g;
  // appends (index_base + i) to `indices` and G to `values` for every selected element (|H| >= max over
  // its bin of |G|, and G != 0), in index order. Both outputs need room for n + 16 entries (SIMD kernels
  // store whole vectors past the last entry). Sets *nonfinite when some H is NaN or infinite (NaN/Inf in
  // g or r, or an overflow of the sums); selection still proceeds and is defined for such elements too.
  // With `out` null nothing else is written. Otherwise out[i] = G for every element of the span, and of
  // nothing past it: the unselected part of the residual update, in the same pass. `out` may be
  // `residual` itself (each element is read before it is written) or share no memory with it.
  AnalyzeBins* analyze_bins;
  // out[i] = residual[i] + grad[i]: the unselected part of the residual update. `out` is `residual`
  // (in place) or shares no memory with it.
  void (*accumulate)(const float* grad, const float* residual, float* out, uint64_t n);
  // The position coders of position_code_impl.h, compiled for this target. Their output does not
  // depend on the target.
  void (*encode_positions)(const uint32_t* idx, uint64_t count, uint8_t* stream, PositionWriter* writer);
  // Version-1 sections (one stream) and version-2 sections (two; decode_split says when they are decoded
  // together).
  PositionRead (*decode_positions)(const uint8_t* src, size_t nbytes, uint64_t count, uint64_t numel, uint32_t* idx);
  PositionRead (*decode_split_positions)(const uint8_t* src, size_t nbytes, uint64_t count, uint64_t numel,
                                         uint32_t* idx);
};

// Kernel::analyze_bins of a kernel that compiles its loops twice, without and with the store of G, so
// that the read-only variant carries no test of `out` per vector.
template <AnalyzeBins* kReadOnly, AnalyzeBins* kWriting>
uint32_t* analyze_bins_either(const float* grad, const float* residual, float* out, uint64_t n, uint32_t bin_size,
                              uint32_t index_base, uint32_t* indices, float* values, bool* nonfinite) {
  return (out ? kWriting : kReadOnly)(grad, residual, out, n, bin_size, index_base, indices, values, nonfinite);
}

const Kernel& scalar_kernel();
#if defined(ADLCODEC_HAVE_AVX2)
const Kernel& avx2_kernel();
const Kernel& avx512_kernel();
#endif
#if defined(ADLCODEC_HAVE_NEON)
const Kernel& neon_kernel();
#endif

const Kernel& active_kernel();

}  // namespace adlcodec
