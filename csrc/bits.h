// Little-endian field access and LSB-first bit streams (docs/FORMAT.md, "Bit streams").
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

// Writes into a region whose exact size the caller computed beforehand, plus 8 bytes of slack:
// every put stores a whole 64-bit word and advances by the bytes completed, so there is no
// data-dependent branch (the bit lengths of Rice codes are irregular).
class BitWriter {
 public:
  static constexpr size_t kSlackBytes = 8;
  explicit BitWriter(uint8_t* dst) : dst_(dst), origin_(dst) {}
  // Continue in a moved buffer: `base` is where byte 0 of the stream now lives.
  void rebase(uint8_t* base) {
    dst_ = base + (dst_ - origin_);
    origin_ = base;
  }
  // value < 2^count, count <= 56
  void put(uint64_t value, unsigned count) {
    acc_ |= value << filled_;
    filled_ += count;
    put_u64(dst_, acc_);
    const unsigned whole_bytes = filled_ >> 3;
    dst_ += whole_bytes;
    acc_ >>= 8 * whole_bytes;  // filled_ <= 63 here, so at most 56
    filled_ &= 7;
  }
  // The last partial byte, zero-padded, was stored by the last put.
  void finish() {
    if (filled_) {
      *dst_++ = static_cast<uint8_t>(acc_);
      acc_ = 0;
      filled_ = 0;
    }
  }

 private:
  uint8_t* dst_;
  uint8_t* origin_;
  uint64_t acc_ = 0;
  unsigned filled_ = 0;
};

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
