// libFuzzer harness for the decoder (built with AddressSanitizer and UBSan by scripts/fuzz.sh).
// The first byte picks a mode: odd -> the rest is resealed with a valid CRC-32C, so the fuzzer
// explores the structural checks behind the checksum instead of stopping at it.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "adlcodec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool reseal = data[0] & 1;
  std::vector<uint8_t> payload(data + 1, data + size);
  if (reseal && payload.size() >= 4) {
    const uint32_t crc = adlcodec::crc32c(payload.data(), payload.size() - 4);
    std::memcpy(payload.data() + payload.size() - 4, &crc, 4);
  }
  adlcodec::PayloadInfo info;
  try {
    info = adlcodec::inspect(payload.data(), payload.size());
  } catch (const adlcodec::FormatError&) {
    return 0;
  }
  if (info.numel > (1u << 18)) return 0;  // an honest header may describe a huge zero tensor
  // Exactly sized buffers, so ASan flags any write past the header's numel.
  std::vector<float> out(info.numel ? info.numel : 1, 1.0f);
  try {
    adlcodec::decode(payload.data(), payload.size(), out.data(), info.numel, data[0] & 2);
  } catch (const adlcodec::FormatError&) {
    for (uint64_t i = 0; i < info.numel; ++i)
      if (out[i] != 1.0f) std::abort();  // a rejected payload wrote something
    return 0;
  }
  for (uint64_t i = 0; i < info.numel; ++i)
    if (!std::isfinite(out[i])) std::abort();  // a valid payload never carries NaN/Inf
  return 0;
}
