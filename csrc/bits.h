// Little-endian field access and the LSB-first bit reader (docs/FORMAT.md, "Bit streams").
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

// Reads past the end yield zero bits; callers compare position() with the section size afterwards.
class BitReader {
 public:
  BitReader(const uint8_t* src, size_t nbytes) : src_(src), nbytes_(nbytes) {}
  // The next 57 or more bits, LSB first.
  uint64_t peek() const {
    const size_t byte = static_cast<size_t>(pos_ >> 3);
    uint64_t word = 0;
    if (byte + 8 <= nbytes_) {
      word = get_u64(src_ + byte);
    } else if (byte < nbytes_) {
      std::memcpy(&word, src_ + byte, nbytes_ - byte);
    }
    return word >> (pos_ & 7);
  }
  void skip(unsigned count) { pos_ += count; }
  uint64_t get(unsigned count) {  // count <= 32
    const uint64_t v = peek() & ((uint64_t(1) << count) - 1);
    pos_ += count;
    return v;
  }
  uint64_t position() const { return pos_; }

 private:
  const uint8_t* src_;
  size_t nbytes_;
  uint64_t pos_ = 0;
};

}  // namespace adlcodec
