// Little-endian field access (docs/FORMAT.md).
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

}  // namespace adlcodec
