// The position coders (docs/FORMAT.md section 4), one source compiled into each target's kernel file:
// on x86-64 the AVX2 file also has BMI1/BMI2, whose flag-free variable shifts (shlx, shrx) and
// trailing-zero count are most of the writer's and the reader's instructions. They live in an
// anonymous namespace, so each target's file has its own internal copies; and they keep to builtins
// (no exceptions, no library templates), so nothing compiled for one target can be picked by the
// linker for another.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "position_code.h"

namespace adlcodec {
namespace {
namespace position_code {

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  __builtin_memcpy(&v, p, 8);
  return v;
}
inline void store_u64(uint8_t* p, uint64_t v) { __builtin_memcpy(p, &v, 8); }
inline int floor_log2(uint64_t x) { return x ? 63 - __builtin_clzll(x) : 0; }

// Trailing zeros of x, at least 63 when x has none below bit 63 (only >= 24, an escape, matters to the
// callers). BMI1's tzcnt defines tzcnt(0) = 64, so the guard bit, an OR on the decoder's chain from one
// code to the next, is only needed where the count comes from bsf/rbit+clz.
inline unsigned trailing_zeros(uint64_t x) {
#if defined(__BMI__)
  return static_cast<unsigned>(__builtin_ia32_tzcnt_u64(x));
#else
  return static_cast<unsigned>(__builtin_ctzll(x | (uint64_t(1) << 63)));
#endif
}
// Rice parameters whose codes the encoder stores two at a time, or eight where it has AVX-512 (see encode).
constexpr unsigned kPairedRiceParamMax = 4;

#if defined(__AVX512F__)
// Appends to each item of `value` the item kStep lanes up (VALIGNQ rotates): lane i then holds items
// i .. i + 2 kStep - 1 of the level below, exact where their length is at most 64.
template <int kStep>
inline __m512i join_next(__m512i value, __m512i length, __m512i* joined_length) {
  *joined_length = _mm512_add_epi64(length, _mm512_alignr_epi64(length, length, kStep));
  return _mm512_or_si512(value, _mm512_sllv_epi64(_mm512_alignr_epi64(value, value, kStep), length));
}

// Eight codes of a chunk whose parameter is at most kPairedRiceParamMax, each laid out as encode's
// one-at-a-time path lays it out, joined in one vector: pairs (0, 1) ... (6, 7) in lanes 0, 2, 4, 6 (each at
// most 2 * (23 + 1 + 4) = 56 bits), fours (0-3) and (4-7) in lanes 0 and 4, all eight in lane 0.
struct RiceGroup8 {
  __m512i pairs, pair_bits, fours, four_bits, eight, eight_bits;
};
// False (nothing written) when a code of the eight escapes.
inline bool rice_group8(const uint32_t* gaps, unsigned k, RiceGroup8* group) {
  const __m512i gap = _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(gaps)));
  const __m512i q = _mm512_srlv_epi64(gap, _mm512_set1_epi64(k));
  if (_mm512_cmpge_epu64_mask(q, _mm512_set1_epi64(kEscapeOnes))) return false;
  const __m512i one = _mm512_set1_epi64(1);
  const __m512i low = _mm512_and_si512(gap, _mm512_set1_epi64(static_cast<long long>((uint64_t(1) << k) - 1)));
  const __m512i code = _mm512_sub_epi64(_mm512_sllv_epi64(_mm512_or_si512(_mm512_add_epi64(low, low), one), q), one);
  const __m512i bits = _mm512_add_epi64(q, _mm512_set1_epi64(k + 1));
  group->pairs = join_next<1>(code, bits, &group->pair_bits);
  group->fours = join_next<2>(group->pairs, group->pair_bits, &group->four_bits);
  group->eight = join_next<4>(group->fours, group->four_bits, &group->eight_bits);
  return true;
}
#endif

inline int min_int(int a, int b) { return a < b ? a : b; }
inline int max_int(int a, int b) { return a > b ? a : b; }

// Bits [bit, bit + 57) or more of a stream of `nbytes` bytes, LSB first; bits past the end read as zero.
inline uint64_t bits_at(const uint8_t* src, size_t nbytes, uint64_t bit) {
  const size_t byte = static_cast<size_t>(bit >> 3);
  uint64_t word = 0;
  if (byte + 8 <= nbytes) {
    word = load_u64(src + byte);
  } else if (byte < nbytes) {
    __builtin_memcpy(&word, src + byte, nbytes - byte);
  }
  return word >> (bit & 7);
}

// Bits of a chunk coded with each of the parameters k0 .. k0 + 3 (one past 31 is costed as 31 and never
// used); branch-free 32-bit arithmetic so the compiler vectorizes it.
inline void chunk_costs4(const uint32_t* gaps, uint32_t len, unsigned k0, uint32_t* costs) {
  uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  const unsigned k1 = k0 + 1 < 32 ? k0 + 1 : 31, k2 = k0 + 2 < 32 ? k0 + 2 : 31, k3 = k0 + 3 < 32 ? k0 + 3 : 31;
  for (uint32_t i = 0; i < len; ++i) {
    const uint32_t gap = gaps[i];
    const uint32_t q0 = gap >> k0, q1 = gap >> k1, q2 = gap >> k2, q3 = gap >> k3;
    c0 += q0 < kEscapeOnes ? q0 + 1 + k0 : kEscapeOnes + kEscapeRawBits;
    c1 += q1 < kEscapeOnes ? q1 + 1 + k1 : kEscapeOnes + kEscapeRawBits;
    c2 += q2 < kEscapeOnes ? q2 + 1 + k2 : kEscapeOnes + kEscapeRawBits;
    c3 += q3 < kEscapeOnes ? q3 + 1 + k3 : kEscapeOnes + kEscapeRawBits;
  }
  costs[0] = c0;
  costs[1] = c1;
  costs[2] = c2;
  costs[3] = c3;
}

// Rice-codes the gaps of idx[0..count), whole chunks of kChunkGaps except possibly the last of the
// section, at byte w->flushed of `stream`, which has room for ceil(count / kChunkGaps) * kChunkRoom
// bytes from there. Candidates are floor(log2) of the mean gap and of the mean without the largest
// gap, each +-1: a geometric gap's best k is floor(log2 mean) or the one below, and one huge gap (a
// frozen layer, a zero region) would otherwise drag k up for the whole chunk although the escape
// code already covers it.
inline void encode(const uint32_t* idx, uint64_t count, uint8_t* stream, PositionWriter* w) {
  // The writer's state lives in locals: stores through a byte pointer may alias any object in
  // memory, and a writer object would be reloaded after each of them.
  uint64_t acc = w->acc;
  unsigned filled = w->filled;
  uint64_t flushed = w->flushed;
  uint64_t total_bits = w->total_bits;
  uint32_t prev_plus_one = w->prev_plus_one;
  auto put = [&](uint64_t value, unsigned bits) {  // value < 2^bits, bits <= 56
    acc |= value << filled;
    filled += bits;
    store_u64(stream + flushed, acc);
    const unsigned whole_bytes = filled >> 3;
    flushed += whole_bytes;
    acc >>= 8 * whole_bytes;  // filled <= 63, so at most 56
    filled &= 7;
  };
  uint32_t gaps[kChunkGaps];
  for (uint64_t start = 0; start < count; start += kChunkGaps) {
    const uint32_t len = static_cast<uint32_t>(count - start < kChunkGaps ? count - start : kChunkGaps);
    // Each gap from the index before it, not from a running "previous": no chain, so it vectorizes.
    const uint32_t* chunk = idx + start;
    gaps[0] = chunk[0] - prev_plus_one;
    for (uint32_t i = 1; i < len; ++i) gaps[i] = chunk[i] - chunk[i - 1] - 1;
    prev_plus_one = chunk[len - 1] + 1;
    // The sum of the gaps telescopes: idx[last] + 1 - (first index this chunk could have taken).
    const uint64_t sum = uint64_t(chunk[len - 1]) + 1 - (uint64_t(chunk[0]) - gaps[0]) - len;
    uint32_t largest = 0;
    for (uint32_t i = 0; i < len; ++i) largest = gaps[i] > largest ? gaps[i] : largest;
    const int from_mean = floor_log2(sum / len);
    const int from_rest = len > 1 ? floor_log2((sum - largest) / (len - 1)) : from_mean;
    const int lowest = max_int(0, min_int(from_mean, from_rest) - 1);
    const int highest = min_int(31, max_int(from_mean, from_rest) + 1);
    unsigned k = 0;
    uint32_t best_cost = 0xFFFFFFFFu;
    auto consider = [&](uint32_t cost, int candidate) {  // the lowest parameter wins a tie
      if (cost < best_cost) {
        best_cost = cost;
        k = unsigned(candidate);
      }
    };
    // Four candidates per pass over the gaps: the usual three or four in one pass, not one pass each.
    for (int first = lowest; first <= highest; first += 4) {
      uint32_t costs[4];
      chunk_costs4(gaps, len, unsigned(first), costs);
      for (int c = first; c <= highest && c < first + 4; ++c) consider(costs[c - first], c);
    }
    total_bits += kRiceParamBits + best_cost;

    put(k, kRiceParamBits);
    const uint64_t low_mask = (uint64_t(1) << k) - 1;
    const unsigned k_plus_one = k + 1;
    uint32_t i = 0;
    if (k <= kPairedRiceParamMax) {
#if defined(__AVX512F__)
      // Eight codes built in one vector, then stored in one put when they fit in 56 bits (at k <= 3
      // nearly always), else by fours or by pairs: the code arithmetic leaves the scalar chain, and a
      // put serves up to eight codes instead of two. (1M elements, bin 50, 1 bit, 10.6 % selected:
      // position coding 0.19 -> 0.15 ms.)
      for (; i + 8 <= len; i += 8) {
        RiceGroup8 group;
        if (!rice_group8(gaps + i, k, &group)) break;
        auto lane_0 = [](__m512i v) { return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm512_castsi512_si128(v))); };
        const uint64_t eight_bits = lane_0(group.eight_bits);
        if (eight_bits <= 56) {
          put(lane_0(group.eight), static_cast<unsigned>(eight_bits));
          continue;
        }
        alignas(64) uint64_t fours[8], four_bits[8], pairs[8], pair_bits[8];
        _mm512_store_si512(fours, group.fours);
        _mm512_store_si512(four_bits, group.four_bits);
        _mm512_store_si512(pairs, group.pairs);
        _mm512_store_si512(pair_bits, group.pair_bits);
        for (unsigned lane = 0; lane < 8; lane += 4) {
          if (four_bits[lane] <= 56) {
            put(fours[lane], static_cast<unsigned>(four_bits[lane]));
          } else {
            put(pairs[lane], static_cast<unsigned>(pair_bits[lane]));
            put(pairs[lane + 2], static_cast<unsigned>(pair_bits[lane + 2]));
          }
        }
      }
#endif
      // Two codes per store while neither escapes: with k <= 4 two codes take at most 2 * (23 + 1 + 4)
      // = 56 bits, one put. Half the writer's chain of dependent steps per code. (q0 | q1) < 24 implies
      // both are below 24; the pairs it turns away are coded one at a time below, as any escape is.
      for (; i + 2 <= len; i += 2) {
        const uint32_t gap0 = gaps[i], gap1 = gaps[i + 1];
        const uint32_t q0 = gap0 >> k, q1 = gap1 >> k;
        if (__builtin_expect((q0 | q1) >= kEscapeOnes, 0)) break;
        const uint64_t code0 = ((((gap0 & low_mask) << 1) | 1) << q0) - 1;
        const uint64_t code1 = ((((gap1 & low_mask) << 1) | 1) << q1) - 1;
        const unsigned bits0 = q0 + k_plus_one;
        put(code0 | (code1 << bits0), bits0 + q1 + k_plus_one);
      }
    }
    for (; i < len; ++i) {
      const uint32_t gap = gaps[i];
      const uint32_t q = gap >> k;
      if (__builtin_expect(q < kEscapeOnes, 1)) {  // else GCC computes the escape's codes on every code
        // q ones, a zero, then the low k bits (at most 24 + 1 + 31 = 56 bits in one store), formed as
        // ((2 low + 1) << q) - 1: the ones are the borrow of the subtraction, one op fewer than OR-ing
        // a run of ones under the shifted low bits.
        put(((((gap & low_mask) << 1) | 1) << q) - 1, q + k_plus_one);
      } else {
        put((uint64_t(1) << kEscapeOnes) - 1, kEscapeOnes);
        put(gap, kEscapeRawBits);
      }
    }
  }
  *w = PositionWriter{acc, filled, flushed, total_bits, prev_plus_one};
}

// Bytes the fast path may load for a chunk of `len` gaps starting at bit `pos`: every refill reads
// [consumed_bits / 8, + 8 + 7) at most, and a chunk consumes at most 5 + 56 * len bits.
inline uint64_t fast_end_byte(uint64_t pos, uint64_t len) {
  return (pos + kRiceParamBits + (kEscapeOnes + kEscapeRawBits) * len + 63) / 8 + 8;
}

// The fast path's reader of one stream (see decode): the bits ahead held inverted in `inv`, so a
// code's run of ones is a count of trailing zeros without a NOT on the chain (the loaded word is
// inverted off the chain).
struct FastReader {
  const uint8_t* ptr;
  uint64_t inv;
  unsigned held;  // bits of inv that are stream bits; above them inv is zero
  unsigned k, k_plus_one;
  uint64_t low_mask;
  uint64_t at;  // the smallest index the next position may take

  void refill() {
    inv |= ~load_u64(ptr) << held;
    ptr += (63 - held) >> 3;
    held |= 56;
  }
  // Starts a chunk at bit `pos` of `src`: reads its Rice parameter.
  void start(const uint8_t* src, uint64_t pos, uint64_t next) {
    ptr = src + (pos >> 3);
    inv = 0;
    held = 0;
    refill();
    inv >>= (pos & 7);
    held -= static_cast<unsigned>(pos & 7);
    refill();
    k = static_cast<unsigned>(~inv & ((1u << kRiceParamBits) - 1));
    inv >>= kRiceParamBits;
    held -= kRiceParamBits;
    low_mask = (uint64_t(1) << k) - 1;
    k_plus_one = k + 1;
    at = next;
  }
  uint64_t bit_position(const uint8_t* src) const { return uint64_t(ptr - src) * 8 - held; }
  // A refill, then one code and up to two more while they lie wholly within the bits held (above
  // those inv is zero, which reads as a run of ones and fails the test); i < len.
  // kWhole: at least three codes of the chunk remain, so the extra codes need no count test of their own.
  template <bool kWhole>
  void step(uint32_t* out, uint64_t& i, uint64_t len) {
    refill();
    // Every code ends by bit 55, so a count of 56 or more can only be an escape's 24 ones.
    const unsigned ones = trailing_zeros(inv);
    if (ones >= kEscapeOnes) {
      inv >>= kEscapeOnes;  // 56 - 24 bits left: the raw gap is in view
      held -= kEscapeOnes;
      at += ~inv & 0xFFFFFFFFu;
      inv >>= kEscapeRawBits;
      held -= kEscapeRawBits;
      out[i++] = static_cast<uint32_t>(at++);
      return;
    }
    at += (uint64_t(ones) << k) | (~(inv >> (ones + 1)) & low_mask);
    inv >>= ones + k_plus_one;
    held -= ones + k_plus_one;
    out[i++] = static_cast<uint32_t>(at++);
    for (int extra = 0; extra < 2 && (kWhole || i < len); ++extra) {
      const unsigned more = trailing_zeros(inv);
      if (more >= kEscapeOnes || more + k_plus_one > held) break;
      at += (uint64_t(more) << k) | (~(inv >> (more + 1)) & low_mask);
      inv >>= more + k_plus_one;
      held -= more + k_plus_one;
      out[i++] = static_cast<uint32_t>(at++);
    }
  }
  // Steps until the chunk's last codes: whole steps while three codes remain, then counted ones.
  void steps(uint32_t* out, uint64_t& i, uint64_t len) {
    while (i + 3 <= len) step<true>(out, i, len);
    while (i < len) step<false>(out, i, len);
  }
};

// The fast path of decode() for one chunk whose every possible code lies inside the section (see there).
// Checks the range once, at the end: positions only grow, so the chunk is in range iff its last
// position is. Returns false (leaving pos and next as they were) when it is not.
inline bool decode_chunk_fast(const uint8_t* src, uint64_t& pos, uint64_t len, uint64_t numel, uint64_t& next,
                              uint32_t* out) {
  FastReader reader;
  reader.start(src, pos, next);
  uint64_t i = 0;
  reader.steps(out, i, len);
  if (reader.at > numel) return false;
  next = reader.at;
  pos = reader.bit_position(src);
  return true;
}

// decode_chunk_fast for a chunk of each of two streams at once, their steps interleaved: two
// independent chains from one code to the next, which the core overlaps.
inline bool decode_chunk_pair_fast(const uint8_t* src_a, uint64_t& pos_a, uint64_t len_a, uint64_t& next_a,
                                   uint32_t* out_a, const uint8_t* src_b, uint64_t& pos_b, uint64_t len_b,
                                   uint64_t& next_b, uint32_t* out_b, uint64_t numel) {
  FastReader a, b;
  a.start(src_a, pos_a, next_a);
  b.start(src_b, pos_b, next_b);
  uint64_t i = 0, j = 0;
  while (i + 3 <= len_a && j + 3 <= len_b) {
    a.step<true>(out_a, i, len_a);
    b.step<true>(out_b, j, len_b);
  }
  a.steps(out_a, i, len_a);
  b.steps(out_b, j, len_b);
  if (a.at > numel || b.at > numel) return false;
  next_a = a.at;
  pos_a = a.bit_position(src_a);
  next_b = b.at;
  pos_b = b.bit_position(src_b);
  return true;
}

// Decodes the chunks of `count` gaps that start at bit `pos` of a stream of `nbytes` bytes into
// idx[0..count), the first position after `next`; advances pos and next. Never reads outside
// [src, src + nbytes); a stream too short shows as pos > 8 * nbytes, which stream_end judges.
//
// A chunk whose every possible code lies well inside the stream (all but the last kilobyte or so)
// takes the fast path: the bit buffer is refilled without a branch (F. Giesen's "variant 4": load 8
// bytes, insert them above the bits still held, advance by whole bytes), so it holds >= 56 bits, a
// whole code. A refill's load address depends on the state one refill earlier; decoding up to three
// codes per refill (the second and third only when they lie wholly within the bits held) takes the
// load's latency off the chain from one code to the next, which is then a count of trailing zeros, an
// add and a shift. A conditional refill ("fewer than 56 bits left?") is a coin flip at 11 % density
// and was mispredicted on half of all codes. The chunk at the end of the stream, where an 8-byte
// load could leave it, takes the careful path, which zero-extends the stream past its end.
inline PositionRead decode_chunks(const uint8_t* src, size_t nbytes, uint64_t& pos, uint64_t count, uint64_t numel,
                                  uint64_t& next, uint32_t* idx) {
  PositionRead result;
  const uint64_t section_bits = uint64_t(nbytes) * 8;
  for (uint64_t start = 0; start < count; start += kChunkGaps) {
    const uint64_t len = count - start < kChunkGaps ? count - start : kChunkGaps;
    uint32_t* out = idx + start;
    // Stores the position `gap` after the previous one; false when it lies outside the tensor.
    auto emit = [&](uint64_t gap, uint64_t i) {
      const uint64_t position = next + gap;
      out[i] = static_cast<uint32_t>(position);
      next = position + 1;
      if (position < numel) return true;
      result.status = PositionRead::kOutOfRange;
      result.position = position;
      return false;
    };
    if (fast_end_byte(pos, len) <= nbytes && decode_chunk_fast(src, pos, len, numel, next, out)) continue;

    // Careful path: the bits ahead in a register, refilled when fewer than a whole code remain. It
    // also re-reads a chunk the fast path found out of range, to name the first offending position.
    uint64_t ahead = 0;  // stream bits [pos, pos + available), LSB first; zeros past the end of the section
    unsigned available = 0;
    auto refill = [&] {  // afterwards available >= 57
      ahead = bits_at(src, nbytes, pos);
      available = 64 - static_cast<unsigned>(pos & 7);
    };
    auto consume = [&](unsigned bits) {  // bits <= available <= 64, and bits < 64
      ahead >>= bits;
      available -= bits;
      pos += bits;
    };
    refill();
    const unsigned k = static_cast<unsigned>(ahead & ((1u << kRiceParamBits) - 1));
    consume(kRiceParamBits);
    const uint64_t low_mask = (uint64_t(1) << k) - 1;
    for (uint64_t i = 0; i < len; ++i) {
      if (available < kEscapeOnes + 1 + 31) refill();  // a whole normal code is in view
      const unsigned ones = ~ahead ? static_cast<unsigned>(__builtin_ctzll(~ahead)) : 64u;
      uint64_t gap;
      if (ones >= kEscapeOnes) {
        consume(kEscapeOnes);
        if (available < kEscapeRawBits) refill();
        gap = ahead & 0xFFFFFFFFu;
        consume(kEscapeRawBits);
      } else {
        gap = (uint64_t(ones) << k) | ((ahead >> (ones + 1)) & low_mask);
        consume(ones + 1 + k);
      }
      if (!emit(gap, i)) return result;
    }
    if (pos > section_bits) break;
  }
  return result;
}

// Whether a stream of `nbytes` bytes ends where its codes did (bit `pos`): no code past its end, no
// whole byte unused, zero padding.
inline PositionRead stream_end(const uint8_t* src, size_t nbytes, uint64_t pos) {
  PositionRead result;
  if (pos > uint64_t(nbytes) * 8) {
    result.status = PositionRead::kTruncated;
  } else if ((pos + 7) / 8 != nbytes) {
    result.status = PositionRead::kTrailingBytes;
  } else if (pos % 8 && (src[nbytes - 1] >> (pos % 8)) != 0) {
    result.status = PositionRead::kPaddingNotZero;
  }
  return result;
}

// decode_chunks to the end of the stream, then stream_end: the rest of a stream from bit `pos`.
inline PositionRead decode_rest_of_stream(const uint8_t* src, size_t nbytes, uint64_t& pos, uint64_t count,
                                          uint64_t numel, uint64_t& next, uint32_t* idx) {
  const PositionRead read = decode_chunks(src, nbytes, pos, count, numel, next, idx);
  return read.status != PositionRead::kOk ? read : stream_end(src, nbytes, pos);
}

// Fills idx[0..count) with the positions of a version-1 section (one stream) of `nbytes` bytes, or
// says why it cannot; never reads outside [src, src + nbytes).
inline PositionRead decode(const uint8_t* src, size_t nbytes, uint64_t count, uint64_t numel, uint32_t* idx) {
  uint64_t pos = 0, next = 0;
  return decode_rest_of_stream(src, nbytes, pos, count, numel, next, idx);
}

// Whether decode_split decodes a chunk of each stream at once. On an out-of-order x86-64 core the two
// chains from one code to the next overlap: 2.4 -> 1.6 ns per code, and the whole 1M-element decode
// at bin 50 1.2x faster than version 1's one stream (bench_codec.py::test_decode_format_versions).
// The in-order Cortex-A53 issues this loop at about one instruction per cycle, so the overlap gains it
// nothing, while the second stream's state costs instructions: llvm-mca's A53 model gave 21.0 cycles
// per code interleaved against 18.7 for one stream after the other, which aarch64 builds therefore do.
#if defined(__aarch64__)
constexpr bool kInterleaveStreams = false;
#else
constexpr bool kInterleaveStreams = true;
#endif

// The same for a version-2 section: the byte count of the first stream, the first stream (the first
// split_first_count(count) gaps), the second (the rest, its first gap counted from the first stream's
// last position). Where kInterleaveStreams, chunk i of each stream is decoded together with chunk i of
// the other, the second stream's positions counted from 0 and moved up once the first stream's end is
// known; the chunks this leaves (the tails, or all of them) are decoded one stream after the other.
inline PositionRead decode_split(const uint8_t* src, size_t nbytes, uint64_t count, uint64_t numel, uint32_t* idx) {
  PositionRead result;
  if (count == 0) return result;  // the caller has checked nbytes == 0
  if (nbytes < kSplitHeaderBytes) {
    result.status = PositionRead::kTruncated;
    return result;
  }
  uint32_t first_nbytes;
  __builtin_memcpy(&first_nbytes, src, 4);  // little-endian targets only (as the rest of the codec)
  if (first_nbytes > nbytes - kSplitHeaderBytes) {
    result.status = PositionRead::kBadSplit;
    return result;
  }
  const uint8_t* first = src + kSplitHeaderBytes;
  const uint8_t* second = first + first_nbytes;
  const size_t second_nbytes = nbytes - kSplitHeaderBytes - first_nbytes;
  const uint64_t first_count = split_first_count(count), second_count = count - first_count;
  if ((second_count == 0) != (second_nbytes == 0)) {
    result.status = PositionRead::kBadSplit;
    return result;
  }
  uint32_t* second_idx = idx + first_count;
  uint64_t pos_a = 0, next_a = 0, pos_b = 0, relative_b = 0;
  uint64_t pairs = 0;  // chunks decoded in each stream together
  for (; kInterleaveStreams && pairs * kChunkGaps < second_count; ++pairs) {
    // Every chunk of the first stream is whole when there is a second.
    const uint64_t len_b = second_count - pairs * kChunkGaps < kChunkGaps ? second_count - pairs * kChunkGaps : kChunkGaps;
    if (fast_end_byte(pos_a, kChunkGaps) > first_nbytes || fast_end_byte(pos_b, len_b) > second_nbytes) break;
    if (!decode_chunk_pair_fast(first, pos_a, kChunkGaps, next_a, idx + pairs * kChunkGaps, second, pos_b, len_b,
                                relative_b, second_idx + pairs * kChunkGaps, numel))
      break;
  }
  const uint64_t done = pairs * kChunkGaps;
  result = decode_rest_of_stream(first, first_nbytes, pos_a, first_count - done, numel, next_a, idx + done);
  if (result.status != PositionRead::kOk) return result;
  // The second stream's positions so far were counted from 0; all of them are below 2^32 (the fast
  // path checked its last against numel).
  const uint64_t base = next_a, decoded_b = done < second_count ? done : second_count;
  if (decoded_b && base + relative_b > numel) {
    uint64_t i = 0;  // ascending, and the last is relative_b - 1 >= numel - base: the loop ends
    while (base + second_idx[i] < numel) ++i;
    result.status = PositionRead::kOutOfRange;
    result.position = base + second_idx[i];
    return result;
  }
  for (uint64_t i = 0; i < decoded_b; ++i) second_idx[i] = static_cast<uint32_t>(second_idx[i] + base);
  uint64_t next_b = base + relative_b;
  return decode_rest_of_stream(second, second_nbytes, pos_b, second_count - decoded_b, numel, next_b,
                               second_idx + decoded_b);
}

}  // namespace position_code
}  // namespace
}  // namespace adlcodec
