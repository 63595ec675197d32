// libFuzzer harness for the encoder: arbitrary floats and options through every kernel of this
// build; all must produce the same bytes and residuals, and the payload must decode.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "adlcodec.h"

// Bitwise equality (NaN payloads included); an empty vector's data() may be null.
static bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
}

// Bitwise equality, except that any NaN equals any NaN: which operand's payload r + g carries when both
// are NaN is the hardware's and the compiler's choice (IEEE 754 leaves it open, and a compiler may swap
// the operands of a commutative add), so with check_finite off and NaN in both inputs the kernels may
// differ there and nowhere else.
static bool same_bits_or_both_nan(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], 4) != 0) return false;
  }
  return true;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static const int kBits[] = {1, 2, 4, 8, 16, 32};
  adlcodec::EncodeOptions options;
  options.bits = kBits[data[0] % 6];
  options.bin_size = 1u + data[1];
  options.check_finite = data[2] & 1;
  data += 3;
  size -= 3;
  const size_t n = size / 8;  // grad, then residual
  std::vector<float> grad(n), residual(n);
  if (n) {  // an empty vector's data() may be null, and memcpy from or to null is undefined
    std::memcpy(grad.data(), data, 4 * n);
    std::memcpy(residual.data(), data + 4 * n, 4 * n);
  }
  const uint64_t dims[1] = {n};

  std::vector<uint8_t> reference_payload;
  std::vector<float> reference_residual;
  for (const std::string& name : adlcodec::available_kernel_names()) {
    adlcodec::set_kernel(name);
    std::vector<float> r = residual;
    std::vector<uint8_t> payload;
    try {
      const adlcodec::Payload encoded = adlcodec::encode(grad.data(), r.data(), n, dims, 1, options);
      payload.assign(encoded.data(), encoded.data() + encoded.size);
    } catch (const adlcodec::ArgumentError&) {
      if (!options.check_finite || !same_bits(r, residual)) std::abort();
      continue;  // non-finite input, rejected with the residual untouched
    }
    if (reference_payload.empty()) {
      reference_payload = payload;
      reference_residual = r;
      if (options.check_finite) {
        std::vector<float> out(n ? n : 1);
        adlcodec::decode(payload.data(), payload.size(), out.data(), n, false);  // must not throw
      }
    } else if (payload != reference_payload || !same_bits_or_both_nan(r, reference_residual)) {
      std::abort();  // kernels disagree
    }
  }
  return 0;
}
