// Little-endian field access and reading LSB-first bit streams (docs/FORMAT.md, "Bit streams").
#pragma once

#include <cstdint>
#include <cstring>

namespace adlcodec {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "adlcodec assumes a little-endian host");

inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void put_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint16_t get_u16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t get_u32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t get_u64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }
inline uint32_t float_bits(float f) { uint32_t v; std::memcpy(&v, &f, 4); return v; }
inline float bits_float(uint32_t v) { float f; std::memcpy(&f, &v, 4); return f; }

// Bits [bit, bit + 57) or more of a stream of `nbytes` bytes, LSB first; bits past the end read as zero,
// so callers compare their position with the section size afterwards.
inline uint64_t bits_at(const uint8_t* src, size_t nbytes, uint64_t bit) {
  const size_t byte = static_cast<size_t>(bit >> 3);
  uint64_t word = 0;
  if (byte + 8 <= nbytes) {
    word = get_u64(src + byte);
  } else if (byte < nbytes) {
    std::memcpy(&word, src + byte, nbytes - byte);
  }
  return word >> (bit & 7);
}

}  // namespace adlcodec
