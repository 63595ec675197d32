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

// The CRC instruction's latency is 3 cycles and its throughput one per cycle, so one chain of
// dependent instructions uses a third of it. Long inputs run as three chains over three adjacent
// blocks, joined with the linearity of CRCs: for the raw (not inverted) register,
// crc(c, A B C) = Z(Z(crc(c, A)) ^ crc(0, B)) ^ crc(0, C), where Z is "append |B| zero bytes", a
// linear map on 32 bits applied through four byte tables.
constexpr size_t kLongBlock = 8192;  // bytes per chain; powers of two: Z is a few squarings
constexpr size_t kShortBlock = 256;

// A linear map on the 32-bit register, by the images of its 32 unit vectors.
struct Gf2Map {
  uint32_t image[32];
  uint32_t operator()(uint32_t v) const {
    uint32_t out = 0;
    for (int bit = 0; v; ++bit, v >>= 1)
      if (v & 1) out ^= image[bit];
    return out;
  }
};

// Z for `bytes` zero bytes (a power of two), as four tables: Z(v) = t[0][v & 255] ^ ... ^ t[3][v >> 24].
struct ZeroAppender {
  uint32_t table[4][256];
  explicit ZeroAppender(size_t bytes) {
    Gf2Map step{};  // one zero bit through the reflected register: v -> (v >> 1) ^ (v & 1 ? poly : 0)
    step.image[0] = 0x82F63B78u;
    for (int bit = 1; bit < 32; ++bit) step.image[bit] = 1u << (bit - 1);
    for (size_t bits = 1; bits < 8 * bytes; bits *= 2) {  // square: twice as many zero bits
      Gf2Map squared{};
      for (int bit = 0; bit < 32; ++bit) squared.image[bit] = step(step.image[bit]);
      step = squared;
    }
    for (int k = 0; k < 4; ++k)
      for (uint32_t b = 0; b < 256; ++b) table[k][b] = step(b << (8 * k));
  }
  uint32_t operator()(uint32_t v) const {
    return table[0][v & 0xFF] ^ table[1][(v >> 8) & 0xFF] ^ table[2][(v >> 16) & 0xFF] ^ table[3][v >> 24];
  }
};

#if defined(__x86_64__) || defined(__ARM_FEATURE_CRC32)
#if defined(__x86_64__)
#define ADLCODEC_CRC_TARGET __attribute__((target("sse4.2")))
ADLCODEC_CRC_TARGET inline uint32_t crc_word(uint32_t c, uint64_t word) {
  return static_cast<uint32_t>(_mm_crc32_u64(c, word));
}
ADLCODEC_CRC_TARGET inline uint32_t crc_byte(uint32_t c, uint8_t byte) { return _mm_crc32_u8(c, byte); }
bool has_hardware_crc() { return __builtin_cpu_supports("sse4.2"); }
#else
#define ADLCODEC_CRC_TARGET
inline uint32_t crc_word(uint32_t c, uint64_t word) { return __crc32cd(c, word); }
inline uint32_t crc_byte(uint32_t c, uint8_t byte) { return __crc32cb(c, byte); }
bool has_hardware_crc() { return true; }  // every Cortex-A53 has the CRC extension
#endif

inline uint64_t load_word(const uint8_t* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}

// Whole triples of `block`-byte blocks, three chains at a time; returns the raw register.
ADLCODEC_CRC_TARGET uint32_t three_chains(const uint8_t*& data, size_t& size, uint32_t c, size_t block,
                                          const ZeroAppender& append_zeros) {
  for (; size >= 3 * block; data += 3 * block, size -= 3 * block) {
    uint32_t c0 = c, c1 = 0, c2 = 0;
    for (size_t at = 0; at < block; at += 8) {
      c0 = crc_word(c0, load_word(data + at));
      c1 = crc_word(c1, load_word(data + block + at));
      c2 = crc_word(c2, load_word(data + 2 * block + at));
    }
    c = append_zeros(append_zeros(c0) ^ c1) ^ c2;
  }
  return c;
}

ADLCODEC_CRC_TARGET uint32_t crc32c_hardware(const uint8_t* data, size_t size, uint32_t crc) {
  static const ZeroAppender append_long(kLongBlock), append_short(kShortBlock);
  uint32_t c = ~crc;
  c = three_chains(data, size, c, kLongBlock, append_long);
  c = three_chains(data, size, c, kShortBlock, append_short);
  for (; size >= 8; data += 8, size -= 8) c = crc_word(c, load_word(data));
  for (; size; --size) c = crc_byte(c, *data++);
  return ~c;
}
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
