// Encoder and validating decoder for format version 1 (docs/FORMAT.md).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

#include "adlcodec.h"
#include "bits.h"
#include "half.h"
#include "kernels.h"
#include "position_code.h"

namespace adlcodec {
namespace {

constexpr uint8_t kMagic[4] = {'A', 'D', 'L', 'C'};
constexpr size_t kFixedHeaderBytes = 24;
constexpr size_t kTrailerBytes = 4;

// Elements per analysis call: a whole number of bins, small enough to keep scratch growth tight.
constexpr uint64_t kAnalyzeChunkElements = 1 << 14;
// Elements per residual-update step: g and r of a step fit in a 32 KiB L1 data cache.
constexpr uint64_t kApplyChunkElements = 2048;

std::string fmt_error(const std::string& what) { return "adlcodec payload: " + what; }

uint64_t value_section_bytes(uint64_t selected, int bits) { return (selected * uint64_t(bits) + 7) / 8; }

// Scratch that grows by whole kernel chunks; uninitialized on purpose.
template <typename T>
class Scratch {
 public:
  T* reserve_more(uint64_t used, uint64_t extra) {
    if (used + extra > capacity_) {
      const uint64_t capacity = std::max<uint64_t>(used + extra, capacity_ * 2);
      std::unique_ptr<T[]> grown(new T[capacity]);
      const uint64_t kept = std::min(used, capacity_);  // `used` may count a byte not yet begun
      if (kept) std::memcpy(grown.get(), data_.get(), kept * sizeof(T));
      data_ = std::move(grown);
      capacity_ = capacity;
    }
    return data_.get() + used;
  }
  const T* data() const { return data_.get(); }
  // Hands the buffer over (the scratch is empty afterwards).
  std::unique_ptr<T[]> release() {
    capacity_ = 0;
    return std::move(data_);
  }

 private:
  std::unique_ptr<T[]> data_;
  uint64_t capacity_ = 0;
};

// --- Values --------------------------------------------------------------------------------------

inline float level_fraction(uint32_t m, int bits) {
  // (m + 1) / 2^(bits-1) is a dyadic rational: exact in float32, and it keeps s * fraction <= s.
  // Multiplying by the power-of-two reciprocal is exact too, and cheaper than dividing.
  return static_cast<float>(m + 1) * (1.0f / static_cast<float>(1u << (bits - 1)));
}

inline uint32_t nearest_level(float magnitude, float scale, int bits) {
  const float levels = static_cast<float>(1u << (bits - 1));
  float y = (magnitude / scale) * levels + 0.5f;
  if (!(y >= 1.0f)) y = 1.0f;  // also maps NaN to the lowest level
  if (y > levels) y = levels;
  return static_cast<uint32_t>(y) - 1u;
}

// The scale of bits <= 8 (docs/FORMAT.md section 5). For bits = 1 the sum of |G| runs in binary64 as four
// interleaved partial sums, the selected element of rank j going to partial j mod 4, combined as
// (P0 + P1) + (P2 + P3): one running sum is a chain of dependent additions, 4 cycles per selected element,
// a third of the whole encode at 10 % density. The order is fixed, so every target gets the same scale.
float selection_scale(const float* selected_values, uint64_t count, int bits) {
  if (count == 0 || bits > 8) return 0.0f;
  if (bits == 1) {
    double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0;
    uint64_t i = 0;
    for (; i + 4 <= count; i += 4) {
      p0 += std::fabs(static_cast<double>(selected_values[i]));
      p1 += std::fabs(static_cast<double>(selected_values[i + 1]));
      p2 += std::fabs(static_cast<double>(selected_values[i + 2]));
      p3 += std::fabs(static_cast<double>(selected_values[i + 3]));
    }
    if (i < count) p0 += std::fabs(static_cast<double>(selected_values[i]));
    if (i + 1 < count) p1 += std::fabs(static_cast<double>(selected_values[i + 1]));
    if (i + 2 < count) p2 += std::fabs(static_cast<double>(selected_values[i + 2]));
    return static_cast<float>(((p0 + p1) + (p2 + p3)) / static_cast<double>(count));
  }
  // The largest |G|, taken over bit patterns: no selected G is NaN (its H would be NaN, and NaN is never
  // >= the bin maximum), and patterns of non-negative non-NaN floats order as signed integers do. Integer
  // maxima vectorize with the baseline instruction set, float ones (NaN rules) do not; sixteen running
  // maxima keep four vectors' chains apart. (1M elements, bin 50, 8 bits: 39 -> 17 us.)
  constexpr unsigned kRunning = 16;
  int32_t largest[kRunning] = {};
  auto magnitude = [selected_values](uint64_t i) {
    return static_cast<int32_t>(float_bits(selected_values[i]) & 0x7FFFFFFFu);
  };
  uint64_t i = 0;
  for (; i + kRunning <= count; i += kRunning)
    for (unsigned j = 0; j < kRunning; ++j) largest[j] = std::max(largest[j], magnitude(i + j));
  for (; i < count; ++i) largest[0] = std::max(largest[0], magnitude(i));
  return bits_float(static_cast<uint32_t>(*std::max_element(largest, largest + kRunning)));
}

// The i-th code of a value section of Bits <= 8 bits per code, packed LSB first.
template <int Bits>
inline uint32_t code_at(const uint8_t* values, uint64_t i) {
  constexpr unsigned kPerByte = 8 / Bits;
  return (values[i / kPerByte] >> ((i % kPerByte) * Bits)) & ((1u << Bits) - 1u);
}

// The sent value of entry i of a valid value section.
template <int Bits>
class ValueReader {
 public:
  ValueReader(const uint8_t* values, float scale) : values_(values) {
    if constexpr (Bits <= 8) {
      for (uint32_t m = 0; m < (1u << (Bits - 1)); ++m)
        magnitude_bits_[m] = float_bits(Bits == 1 ? scale : scale * level_fraction(m, Bits));
    }
  }
  float operator()(uint64_t i) const {
    if constexpr (Bits == 16) {
      return half_to_float(get_u16(values_ + 2 * i));
    } else if constexpr (Bits == 32) {
      return bits_float(get_u32(values_ + 4 * i));
    } else {
      const uint32_t code = code_at<Bits>(values_, i);
      const uint32_t sign = (code >> (Bits - 1)) << 31;
      return bits_float(magnitude_bits_[code & ((1u << (Bits - 1)) - 1u)] | sign);
    }
  }

 private:
  const uint8_t* values_;
  uint32_t magnitude_bits_[Bits <= 8 ? (1u << (Bits - 1)) : 1] = {};
};

// The sent value of every value code (bits <= 8), as the decoder's own reader gives it.
template <int Bits>
struct SentTable {
  static_assert(Bits <= 8);
  explicit SentTable(float scale) {
    uint8_t code_byte = 0;  // a one-entry value section
    const ValueReader<Bits> sent(&code_byte, scale);
    for (uint32_t code = 0; code < (1u << Bits); ++code) {
      code_byte = static_cast<uint8_t>(code);
      value[code] = sent(0);
    }
  }
  float value[1u << Bits];
};

template <int Bits>
uint32_t value_code(float G, float scale) {
  const uint32_t sign = float_bits(G) >> 31;
  if constexpr (Bits == 1) {
    return sign;
  } else {
    return (sign << (Bits - 1)) | nearest_level(std::fabs(G), scale, Bits);
  }
}

// value_code of each of G[0 .. count), in a loop of its own so that it vectorizes.
template <int Bits>
void value_codes(const float* G, uint64_t count, float scale, uint8_t* codes) {
  static_assert(Bits >= 2 && Bits <= 8);
  for (uint64_t i = 0; i < count; ++i) codes[i] = static_cast<uint8_t>(value_code<Bits>(G[i], scale));
}

// The value section of 16- and 32-bit values, in one sequential pass.
template <int Bits>
void write_values(const float* G, uint64_t count, uint8_t* values) {
  static_assert(Bits == 16 || Bits == 32);
  if constexpr (Bits == 16) {
    for (uint64_t i = 0; i < count; ++i) put_u16(values + 2 * i, float_to_half(G[i]));
  } else {
    if (count) std::memcpy(values, G, 4 * count);  // G may be null when nothing was selected
  }
}

// The 2-7-bit value codes before they are packed; per thread, kept across calls.
Scratch<uint8_t>& code_scratch() {
  thread_local Scratch<uint8_t> scratch;
  return scratch;
}

// Pass 2, in L1-sized chunks: out <- G, then G - sent where selected (error feedback). `out` is the
// residual itself or a buffer apart from it. When pass 1 has already written out <- G, only the
// selected elements are visited.
// For bits <= 8 the value codes are packed in the same loop (bits < 8: 64 bits at a time; for 2-8
// bits they are computed beforehand, in a loop that vectorizes), and `sent` is the decoder's value of
// the code just packed (SentTable) instead of the code read back out of the section; 16 and 32 bits
// read the section back with the decoder's reader.
template <int Bits>
void update_residual(const Kernel& kernel, const float* grad, const float* residual, float* out, uint64_t numel,
                     bool unselected_written, const uint32_t* idx, const float* G, uint64_t selected, float scale,
                     uint8_t* values) {
  uint64_t next = 0;
  // Value codes of bits < 8 not yet stored, the first in the low bits, stored a 64-bit word at a time.
  uint64_t pack = 0;
  unsigned packed_bits = 0;
  auto append_codes = [&](uint64_t codes, unsigned nbits) {  // nbits <= 32
    pack |= codes << packed_bits;
    packed_bits += nbits;
    if (packed_bits >= 64) {  // the word is full; keep what did not fit (shifting nbits - 0 leaves none)
      put_u64(values, pack);
      values += 8;
      packed_bits -= 64;
      pack = codes >> (nbits - packed_bits);
    }
  };
  if constexpr (Bits == 1) {
    // The decoder's value of a sign code is s with that sign bit (ValueReader<1>), so sent = s with
    // G's sign: no code to look up on the way, and nothing chains one element to the next but the
    // packing of the sign bits, four at a time.
    const uint32_t scale_bits = float_bits(scale);
    auto residual_of = [scale_bits](float G) { return G - bits_float(scale_bits | (float_bits(G) & 0x80000000u)); };
    for (uint64_t start = 0; start < numel; start += kApplyChunkElements) {
      const uint64_t end = std::min(numel, start + kApplyChunkElements);
      if (!unselected_written) kernel.accumulate(grad + start, residual + start, out + start, end - start);
      // Every load of a group before its first store: `out` may alias G and idx as far as the compiler
      // knows, and an in-order core would otherwise wait out each element's load latency in turn.
      for (; next + 4 <= selected && idx[next + 3] < end; next += 4) {  // indices ascend
        float updated[4];
        uint32_t at[4];
        uint64_t signs = 0;
        for (unsigned j = 0; j < 4; ++j) {
          updated[j] = residual_of(G[next + j]);
          signs |= uint64_t(float_bits(G[next + j]) >> 31) << j;
          at[j] = idx[next + j];
        }
        for (unsigned j = 0; j < 4; ++j) out[at[j]] = updated[j];
        append_codes(signs, 4);
      }
      for (; next < selected && idx[next] < end; ++next) {
        out[idx[next]] = residual_of(G[next]);
        append_codes(float_bits(G[next]) >> 31, 1);
      }
    }
  } else if constexpr (Bits <= 8) {
    const SentTable<Bits> sent(scale);
    // The codes first, in a loop of their own that the compiler vectorizes: the division of the level
    // rule is the costliest step of the update, and one at a time it dominated it. 8-bit codes are the
    // value section itself.
    uint8_t* const codes = Bits == 8 ? values : code_scratch().reserve_more(0, selected ? selected : 1);
    value_codes<Bits>(G, selected, scale, codes);
    for (uint64_t start = 0; start < numel; start += kApplyChunkElements) {
      const uint64_t end = std::min(numel, start + kApplyChunkElements);
      if (!unselected_written) kernel.accumulate(grad + start, residual + start, out + start, end - start);
      // Four at a time, every load before the first store, as for 1 bit: one at a time, each store to
      // `out` (which may alias G, idx and the codes as far as the compiler knows) held up the next
      // element's loads. (1M elements, bin 50, 8 bits: encode 1.16-1.20 -> 1.15 ms.)
      for (; next + 4 <= selected && idx[next + 3] < end; next += 4) {
        float updated[4];
        uint32_t at[4];
        uint64_t group = 0;
        for (unsigned j = 0; j < 4; ++j) {
          const uint32_t code = codes[next + j];
          updated[j] = G[next + j] - sent.value[code];
          at[j] = idx[next + j];
          group |= uint64_t(code) << (j * Bits);
        }
        for (unsigned j = 0; j < 4; ++j) out[at[j]] = updated[j];
        if constexpr (Bits < 8) append_codes(group, 4 * Bits);  // 8-bit codes are the section already
      }
      for (; next < selected && idx[next] < end; ++next) {
        const uint32_t code = codes[next];
        out[idx[next]] = G[next] - sent.value[code];
        if constexpr (Bits < 8) append_codes(code, Bits);
      }
    }
  } else {
    write_values<Bits>(G, selected, values);
    const ValueReader<Bits> sent(values, scale);
    for (uint64_t start = 0; start < numel; start += kApplyChunkElements) {
      const uint64_t end = std::min(numel, start + kApplyChunkElements);
      if (!unselected_written) kernel.accumulate(grad + start, residual + start, out + start, end - start);
      for (; next < selected && idx[next] < end; ++next) out[idx[next]] = G[next] - sent(next);
    }
  }
  for (unsigned byte = 0; 8 * byte < packed_bits; ++byte) values[byte] = static_cast<uint8_t>(pack >> (8 * byte));
}

// --- Header ----------------------------------------------------------------------------------------

enum class ShapeError { kNone, kExtent, kProduct };

// Every extent, and the product of the nonzero extents, at most 2^32-1: a rule that does not depend on
// where a zero extent sits, and keeps every shape one that numpy can allocate (it refuses shapes whose
// nonzero extents overflow, even when one extent is 0).
ShapeError check_shape(const uint64_t* dims, unsigned ndim, uint64_t* numel) {
  uint64_t nonzero_product = 1;
  bool any_zero = false;
  for (unsigned d = 0; d < ndim; ++d) {
    if (dims[d] > kMaxNumel) return ShapeError::kExtent;
    if (dims[d] == 0) {
      any_zero = true;
      continue;
    }
    if (nonzero_product > kMaxNumel / dims[d]) return ShapeError::kProduct;
    nonzero_product *= dims[d];
  }
  *numel = any_zero ? 0 : nonzero_product;
  return ShapeError::kNone;
}

struct Parsed {
  PayloadInfo info;
  const uint8_t* positions = nullptr;
  const uint8_t* values = nullptr;
};

Parsed parse(const uint8_t* data, size_t size) {
  Parsed p;
  PayloadInfo& info = p.info;
  if (size < kFixedHeaderBytes + kTrailerBytes)
    throw FormatError(fmt_error("truncated: " + std::to_string(size) + " bytes, a payload has at least " +
                                std::to_string(kFixedHeaderBytes + kTrailerBytes)));
  if (std::memcmp(data, kMagic, 4) != 0) throw FormatError(fmt_error("bad magic (not an adlcodec payload)"));
  info.version = data[4];
  if (info.version < 1 || info.version > kFormatVersion)
    throw FormatError(fmt_error("unsupported format version " + std::to_string(info.version) +
                                " (this build reads versions 1 to " + std::to_string(kFormatVersion) + ")"));
  const uint32_t stored_crc = get_u32(data + size - kTrailerBytes);
  const uint32_t actual_crc = crc32c(data, size - kTrailerBytes);
  if (stored_crc != actual_crc) throw FormatError(fmt_error("checksum mismatch (corrupted or truncated)"));

  info.dtype = data[5];
  if (info.dtype != kDtypeFloat32) throw FormatError(fmt_error("unknown dtype code " + std::to_string(info.dtype)));
  info.bits = data[6];
  if (!is_valid_bits(info.bits)) throw FormatError(fmt_error("invalid bit width " + std::to_string(info.bits)));
  const unsigned ndim = data[7];
  if (ndim > kMaxDims) throw FormatError(fmt_error("too many dimensions: " + std::to_string(ndim)));
  info.bin_size = get_u32(data + 8);
  if (info.bin_size == 0) throw FormatError(fmt_error("bin size 0"));
  info.selected = get_u32(data + 12);
  info.scale = bits_float(get_u32(data + 16));
  info.positions_nbytes = get_u32(data + 20);

  const size_t header_bytes = kFixedHeaderBytes + 8 * size_t(ndim);
  if (size < header_bytes + kTrailerBytes) throw FormatError(fmt_error("truncated shape"));
  for (unsigned d = 0; d < ndim; ++d) info.shape.push_back(get_u64(data + kFixedHeaderBytes + 8 * d));
  switch (check_shape(info.shape.data(), ndim, &info.numel)) {
    case ShapeError::kNone: break;
    case ShapeError::kExtent: throw FormatError(fmt_error("shape extent larger than 2^32-1"));
    case ShapeError::kProduct: throw FormatError(fmt_error("shape's nonzero extents multiply to more than 2^32-1"));
  }
  if (info.selected > info.numel)
    throw FormatError(fmt_error("selected count exceeds the number of elements"));
  // Every selected element costs at least one position bit: bounds what the decoder allocates.
  if (uint64_t(info.selected) > uint64_t(info.positions_nbytes) * 8)
    throw FormatError(fmt_error("selected count exceeds what the position section can hold"));
  if ((info.selected == 0) != (info.positions_nbytes == 0))
    throw FormatError(fmt_error("position section size does not match the selected count"));
  info.values_nbytes = value_section_bytes(info.selected, info.bits);
  const uint64_t expected = uint64_t(header_bytes) + info.positions_nbytes + info.values_nbytes + kTrailerBytes;
  if (expected != size)
    throw FormatError(fmt_error("size mismatch: header describes " + std::to_string(expected) + " bytes, got " +
                                std::to_string(size)));

  const uint32_t scale_bits = float_bits(info.scale);
  const bool scale_required = info.selected > 0 && info.bits <= 8;
  if (scale_required) {
    if (!(scale_bits > 0 && scale_bits < 0x7F800000u))
      throw FormatError(fmt_error("scale must be positive and finite"));
  } else if (scale_bits != 0) {
    throw FormatError(fmt_error("scale must be 0 when no scale is used"));
  }
  info.nbytes = size;
  p.positions = data + header_bytes;
  p.values = p.positions + info.positions_nbytes;
  return p;
}

struct NonFiniteScan {
  uint64_t count = 0;
  uint64_t first = 0;
};

std::string count_message(const char* what, const NonFiniteScan& scan) {
  return std::string(what) + " has " + std::to_string(scan.count) + " non-finite value" +
         (scan.count == 1 ? "" : "s") + " (first at index " + std::to_string(scan.first) + ")";
}

[[noreturn]] void throw_nonfinite(const float* grad, const float* residual, uint64_t numel) {
  // Slow path, only on error: say which input is at fault.
  NonFiniteScan in_grad, in_residual, in_sums;
  for (uint64_t i = 0; i < numel; ++i) {
    if (!std::isfinite(grad[i]) && in_grad.count++ == 0) in_grad.first = i;
    if (!std::isfinite(residual[i]) && in_residual.count++ == 0) in_residual.first = i;
    const float G = residual[i] + grad[i];
    if (!std::isfinite(G + grad[i]) && in_sums.count++ == 0) in_sums.first = i;
  }
  std::string message;
  if (in_grad.count) message = count_message("grad", in_grad);
  if (in_residual.count) message += (message.empty() ? "" : "; ") + count_message("residual", in_residual);
  if (message.empty())
    message = "residual + 2*grad overflows float32 at " + std::to_string(in_sums.count) + " element" +
              (in_sums.count == 1 ? "" : "s") + " (first at index " + std::to_string(in_sums.first) + ")";
  throw ArgumentError(message + "; the residual was left unchanged");
}

// The sent value of each value code (bits <= 8), or of the 16/32-bit field, as the dense output takes
// it. Written into a zero-filled tensor a value v lands as 0.0f + v, not v: the two differ for -0.0
// (a crafted binary16/binary32 field, or a scale so small that s * f_m underflows), and the output
// is defined as zeros plus the sent values.
template <int Bits, bool OntoZero>
class DenseValue {
 public:
  DenseValue(const uint8_t* values, uint64_t values_nbytes, float scale)
      : reader_(values, scale), values_(values), values_nbytes_(values_nbytes) {
    if constexpr (Bits <= 8) {
      const SentTable<Bits> sent(scale);
      for (uint32_t code = 0; code < (1u << Bits); ++code)
        table_[code] = OntoZero ? 0.0f + sent.value[code] : sent.value[code];
    }
  }
  float operator()(uint64_t i) const {
    if constexpr (Bits <= 8) {
      return table_[code_at<Bits>(values_, i)];
    } else {
      const float v = reader_(i);
      return OntoZero ? 0.0f + v : v;
    }
  }
  // Entries first .. first + 7. Bits <= 8: all eight codes from one 8-byte load (8 * Bits bits at a
  // bit offset below 8, or at 0 for 8 bits), where that load stays inside the section.
  void group(uint64_t first, float* v) const {
    if constexpr (Bits <= 8) {
      const uint64_t bit = first * Bits;
      if (bit / 8 + 8 <= values_nbytes_) {
        const uint64_t codes = get_u64(values_ + bit / 8) >> (bit % 8);
        for (unsigned j = 0; j < 8; ++j) v[j] = table_[(codes >> (j * Bits)) & ((1u << Bits) - 1u)];
        return;
      }
    }
    for (unsigned j = 0; j < 8; ++j) v[j] = (*this)(first + j);
  }

 private:
  const ValueReader<Bits> reader_;
  const uint8_t* values_;
  uint64_t values_nbytes_;
  float table_[Bits <= 8 ? (1u << Bits) : 1] = {};
};

// Whether any of `count` little-endian binary16 or binary32 fields is an infinity or NaN: its exponent
// field is all ones, so adding one unit of the exponent to its magnitude carries into the sign bit,
// which no finite magnitude reaches. Only AND, ADD and OR, with no early exit: it vectorizes with
// the baseline instruction set. (An unsigned maximum, which SSE2 lacks, stayed scalar: 1M-element
// 32-bit decode 0.482-0.492 ms against 0.475 now; an OR of comparisons did not vectorize either.)
template <int Bits>
bool any_nonfinite(const uint8_t* values, uint64_t count) {
  static_assert(Bits == 16 || Bits == 32);
  using Field = std::conditional_t<Bits == 16, uint16_t, uint32_t>;
  constexpr Field kMagnitude = Bits == 16 ? 0x7FFFu : 0x7FFFFFFFu;
  constexpr Field kExponentUnit = Bits == 16 ? 0x0400u : 0x00800000u;
  constexpr Field kSign = Field(kMagnitude + 1u);
  Field carried = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const Field field = Bits == 16 ? get_u16(values + 2 * i) : get_u32(values + 4 * i);
    carried |= Field((field & kMagnitude) + kExponentUnit);
  }
  return (carried & kSign) != 0;
}

// Zero-fills (unless accumulating) and scatters in L1-sized chunks, so each line of `out` is
// brought in once instead of once for the fill and again for the scatter. Onto zeros the scatter
// stores instead of adding: no load of `out` per selected element. Entries go eight at a time while
// all eight land in the chunk: one bounds test per group, and their codes from one load.
template <int Bits>
void write_dense(const uint32_t* idx, const uint8_t* values, uint64_t count, float scale, float* out, uint64_t numel,
                 bool accumulate) {
  const uint64_t values_nbytes = value_section_bytes(count, Bits);
  uint64_t next = 0;
  float v[8];
  if (accumulate) {
    const DenseValue<Bits, false> value(values, values_nbytes, scale);
    for (; next + 8 <= count; next += 8) {
      value.group(next, v);
      for (unsigned j = 0; j < 8; ++j) out[idx[next + j]] += v[j];
    }
    for (; next < count; ++next) out[idx[next]] += value(next);
  } else {
    const DenseValue<Bits, true> value(values, values_nbytes, scale);
    for (uint64_t start = 0; start < numel; start += kApplyChunkElements) {
      const uint64_t end = std::min(numel, start + kApplyChunkElements);
      std::fill(out + start, out + end, 0.0f);
      for (; next + 8 <= count && idx[next + 7] < end; next += 8) {
        value.group(next, v);
        for (unsigned j = 0; j < 8; ++j) out[idx[next + j]] = v[j];
      }
      for (; next < count && idx[next] < end; ++next) out[idx[next]] = value(next);
    }
  }
}

}  // namespace

bool is_valid_bits(int bits) {
  return bits == 1 || bits == 2 || bits == 4 || bits == 8 || bits == 16 || bits == 32;
}

Payload encode(const float* grad, float* residual, uint64_t numel, const uint64_t* dims, int ndim,
               const EncodeOptions& options) {
  return encode(grad, residual, residual, numel, dims, ndim, options);
}

Payload encode(const float* grad, const float* residual, float* residual_out, uint64_t numel, const uint64_t* dims,
               int ndim, const EncodeOptions& options) {
  if (!is_valid_bits(options.bits))
    throw ArgumentError("bits must be one of 1, 2, 4, 8, 16, 32; got " + std::to_string(options.bits));
  if (options.bin_size < 1) throw ArgumentError("bin_size must be >= 1");
  if (ndim < 0 || ndim > kMaxDims) throw ArgumentError("at most 32 dimensions are supported");
  uint64_t product = 0;
  switch (check_shape(dims, static_cast<unsigned>(ndim), &product)) {
    case ShapeError::kNone: break;
    case ShapeError::kExtent: throw ArgumentError("a shape extent is larger than 2^32-1");
    case ShapeError::kProduct: throw ArgumentError("the shape's nonzero extents multiply to more than 2^32-1");
  }
  if (product != numel) throw ArgumentError("shape does not match the number of elements");

  // Pass 1: the selection, the selected G, and whether any sum is not finite. In place with the check
  // on it reads only, so a rejected input leaves the residual exactly as it was, and pass 2 writes
  // out <- G. Otherwise nothing written in pass 1 needs undoing (the residual is not its destination,
  // or nothing is rejected), and pass 1 writes out <- G itself: one pass over g and r fewer. The
  // patch of the selected elements afterwards touches every line of `out` again (at 1-10 %
  // selection), so where `out` no longer fits in cache the memory traffic is the same as two passes,
  // with less work (measured at 16M elements: 29.7 ms, against 33.9 for two passes out of place).
  const bool write_in_pass1 = residual_out != residual || !options.check_finite;
  const Kernel& kernel = active_kernel();
  // Kept per thread across calls: training encodes the same tensors every step, and fresh
  // buffers would pay their page faults each time.
  thread_local Scratch<uint32_t> indices;
  thread_local Scratch<float> selected_values;
  thread_local Scratch<uint8_t> position_stream;
  thread_local Scratch<uint8_t> spare_payload;
  const uint64_t header_bytes = kFixedHeaderBytes + 8 * uint64_t(ndim);
  // In place without the check, pass 1 overwrites the residual, and nothing can restore it (r + g - g
  // is not r in floating point): every buffer the rest may need is reserved before, at its size for
  // numel selected elements, so that running out of memory leaves the residual as it was. The
  // reservations are address space only: a page is not touched until a call uses it.
  const bool irreversible = residual_out == residual && !options.check_finite;
  if (irreversible) {
    const uint64_t chunks = (numel + kChunkGaps - 1) / kChunkGaps;
    const uint64_t worst_positions = (chunks + 4) * kChunkRoom + kSplitHeaderBytes + 8;
    const uint64_t worst_payload = header_bytes + worst_positions + value_section_bytes(numel, options.bits) + kTrailerBytes;
    indices.reserve_more(0, numel + 16);
    selected_values.reserve_more(0, numel + 16);
    position_stream.reserve_more(0, worst_positions);
    if (options.bits > 1 && options.bits < 8) code_scratch().reserve_more(0, numel + 1);
    spare_payload.reserve_more(0, worst_payload);
  }
  uint64_t selected = 0;
  bool nonfinite = false;
  const uint64_t bins_per_chunk = std::max<uint64_t>(1, kAnalyzeChunkElements / options.bin_size);
  const uint64_t chunk_elements = bins_per_chunk * options.bin_size;
  for (uint64_t start = 0; start < numel; start += chunk_elements) {
    const uint64_t len = std::min(chunk_elements, numel - start);
    uint32_t* begin = indices.reserve_more(selected, len + 16);
    float* values = selected_values.reserve_more(selected, len + 16);
    uint32_t* end = kernel.analyze_bins(grad + start, residual + start, write_in_pass1 ? residual_out + start : nullptr,
                                        len, options.bin_size,
                                        static_cast<uint32_t>(start), begin, values, &nonfinite);
    selected += static_cast<uint64_t>(end - begin);
  }
  if (nonfinite && options.check_finite) throw_nonfinite(grad, residual, numel);

  // Positions: two streams behind the first's byte count (version 2), so that a decoder can follow two
  // chains of codes at once. (Writing the two streams together, chunk by chunk, was 28 % slower on
  // x86-64: twice the writer state in registers.) The second starts on a byte of its own and its gaps
  // run on from the first's. A group of chunks per call, so that the stream grows by what a group can
  // take at most.
  constexpr uint64_t kGroupPositions = 64 * uint64_t(kChunkGaps);
  const uint64_t first_count = split_first_count(selected);
  uint64_t first_nbytes = 0;
  PositionWriter writer;
  writer.flushed = kSplitHeaderBytes;
  for (uint64_t start = 0; start < selected;) {
    if (start == first_count) {
      first_nbytes = (writer.total_bits + 7) / 8;
      writer = PositionWriter{0, 0, kSplitHeaderBytes + first_nbytes, 8 * first_nbytes, writer.prev_plus_one};
    }
    const uint64_t len = std::min(kGroupPositions, (start < first_count ? first_count : selected) - start);
    // flushed + 1: the byte the writer has begun is kept when the stream grows.
    uint8_t* stream = position_stream.reserve_more(writer.flushed + 1, (len + kChunkGaps - 1) / kChunkGaps * kChunkRoom) -
                      (writer.flushed + 1);
    kernel.encode_positions(indices.data() + start, len, stream, &writer);
    start += len;
  }
  if (first_count == selected) first_nbytes = (writer.total_bits + 7) / 8;
  const uint64_t positions_nbytes = selected ? kSplitHeaderBytes + (writer.total_bits + 7) / 8 : 0;
  if (positions_nbytes > 0xFFFFFFFFull) throw ArgumentError("payload too large for the format");
  const uint64_t values_nbytes = value_section_bytes(selected, options.bits);
  Payload payload;
  payload.size = header_bytes + positions_nbytes + values_nbytes + kTrailerBytes;
  if (irreversible) {
    payload.bytes.reset(new (std::nothrow) uint8_t[payload.size]);
    if (!payload.bytes) payload.bytes = spare_payload.release();  // larger than needed, but it cannot fail
  } else {
    payload.bytes.reset(new uint8_t[payload.size]);
  }
  uint8_t* p = payload.bytes.get();
  if (selected) {
    std::memcpy(p + header_bytes, position_stream.data(), positions_nbytes);
    put_u32(p + header_bytes, static_cast<uint32_t>(first_nbytes));  // the section's first field
  }

  const float scale = selection_scale(selected_values.data(), selected, options.bits);
  uint8_t* values = p + header_bytes + positions_nbytes;
  const auto update = options.bits == 1   ? update_residual<1>
                      : options.bits == 2 ? update_residual<2>
                      : options.bits == 4 ? update_residual<4>
                      : options.bits == 8 ? update_residual<8>
                      : options.bits == 16 ? update_residual<16>
                                           : update_residual<32>;
  update(kernel, grad, residual, residual_out, numel, write_in_pass1, indices.data(), selected_values.data(), selected,
         scale, values);

  std::memcpy(p, kMagic, 4);
  p[4] = kFormatVersion;
  p[5] = kDtypeFloat32;
  p[6] = static_cast<uint8_t>(options.bits);
  p[7] = static_cast<uint8_t>(ndim);
  put_u32(p + 8, options.bin_size);
  put_u32(p + 12, static_cast<uint32_t>(selected));
  put_u32(p + 16, float_bits(scale));
  put_u32(p + 20, static_cast<uint32_t>(positions_nbytes));
  for (int d = 0; d < ndim; ++d) put_u64(p + kFixedHeaderBytes + 8 * d, dims[d]);
  put_u32(p + payload.size - kTrailerBytes, crc32c(p, payload.size - kTrailerBytes));
  return payload;
}

PayloadInfo inspect(const uint8_t* data, size_t size) { return parse(data, size).info; }

void decode(const uint8_t* data, size_t size, float* out, uint64_t out_numel, bool accumulate) {
  const Parsed p = parse(data, size);
  const PayloadInfo& info = p.info;
  if (out_numel != info.numel)
    throw ArgumentError("out has " + std::to_string(out_numel) + " elements, the payload holds " +
                        std::to_string(info.numel));
  const uint64_t count = info.selected;
  // Kept per thread across calls, as the encoder's scratch: a fresh array of this size is a fresh
  // mapping whose page faults cost as much as filling it.
  thread_local Scratch<uint32_t> positions;
  uint32_t* idx = positions.reserve_more(0, count ? count : 1);
  const Kernel& kernel = active_kernel();
  const PositionRead read = (info.version == 1 ? kernel.decode_positions : kernel.decode_split_positions)(
      p.positions, info.positions_nbytes, count, info.numel, idx);
  switch (read.status) {
    case PositionRead::kOk:
      break;
    case PositionRead::kOutOfRange:
      throw FormatError(fmt_error("position " + std::to_string(read.position) + " is outside the tensor (" +
                                  std::to_string(info.numel) + " elements)"));
    case PositionRead::kTruncated:
      throw FormatError(fmt_error("position section is truncated"));
    case PositionRead::kTrailingBytes:
      throw FormatError(fmt_error("position section has trailing bytes"));
    case PositionRead::kPaddingNotZero:
      throw FormatError(fmt_error("position section padding is not zero"));
    case PositionRead::kBadSplit:
      throw FormatError(fmt_error("position streams do not match the section (first stream's byte count)"));
  }

  const uint8_t* values = p.values;
  const int bits = info.bits;
  if (bits == 16) {
    if (any_nonfinite<16>(values, count)) throw FormatError(fmt_error("non-finite half value"));
  } else if (bits == 32) {
    if (any_nonfinite<32>(values, count)) throw FormatError(fmt_error("non-finite value"));
  } else {
    const uint64_t used = count * uint64_t(bits);
    if (used % 8 && (values[info.values_nbytes - 1] >> (used % 8)) != 0)
      throw FormatError(fmt_error("value section padding is not zero"));
  }

  // Valid: from here on nothing can fail.
  const auto write = bits == 1   ? write_dense<1>
                     : bits == 2 ? write_dense<2>
                     : bits == 4 ? write_dense<4>
                     : bits == 8 ? write_dense<8>
                     : bits == 16 ? write_dense<16>
                                  : write_dense<32>;
  write(idx, values, count, info.scale, out, info.numel, accumulate);
}

}  // namespace adlcodec
