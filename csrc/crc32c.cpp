// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the CPU's CRC32C instruction where there is
// one (SSE4.2 on x86-64, the CRC extension every Cortex-A53 has), else portable slicing-by-8.
#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#endif

#include "adlcodec.h"

namespace adlcodec {
namespace {

using Tables = std::array<std::array<uint32_t, 256>, 8>;

Tables make_tables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  return t;
}

const Tables& tables() {
  static const Tables t = make_tables();
  return t;
}

}  // namespace

uint32_t crc32c_portable(const uint8_t* data, size_t size, uint32_t crc) {
  const Tables& t = tables();
  crc = ~crc;
  while (size >= 8) {
    const uint32_t lo = crc ^ (uint32_t(data[0]) | uint32_t(data[1]) << 8 | uint32_t(data[2]) << 16 |
                               uint32_t(data[3]) << 24);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][data[4]] ^ t[2][data[5]] ^ t[1][data[6]] ^ t[0][data[7]];
    data += 8;
    size -= 8;
  }
  while (size--) crc = (crc >> 8) ^ t[0][(crc ^ *data++) & 0xFF];
  return ~crc;
}

namespace {

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hardware(const uint8_t* data, size_t size, uint32_t crc) {
  uint64_t c = ~crc & 0xFFFFFFFFu;
  for (; size >= 8; data += 8, size -= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    c = _mm_crc32_u64(c, word);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; size; --size) c32 = _mm_crc32_u8(c32, *data++);
  return ~c32;
}
bool has_hardware_crc() { return __builtin_cpu_supports("sse4.2"); }
#elif defined(__ARM_FEATURE_CRC32)
uint32_t crc32c_hardware(const uint8_t* data, size_t size, uint32_t crc) {
  uint32_t c = ~crc;
  for (; size >= 8; data += 8, size -= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    c = __crc32cd(c, word);
  }
  for (; size; --size) c = __crc32cb(c, *data++);
  return ~c;
}
bool has_hardware_crc() { return true; }
#else
uint32_t crc32c_hardware(const uint8_t* data, size_t size, uint32_t crc) { return crc32c_portable(data, size, crc); }
bool has_hardware_crc() { return false; }
#endif

}  // namespace

uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc) {
  static const bool hardware = has_hardware_crc();
  return hardware ? crc32c_hardware(data, size, crc) : crc32c_portable(data, size, crc);
}

}  // namespace adlcodec
