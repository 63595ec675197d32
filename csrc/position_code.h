// Position coding (docs/FORMAT.md section 4): the constants and the interface of the per-target coders.
#pragma once

#include <cstddef>
#include <cstdint>

namespace adlcodec {

// Gaps between selected indices, Rice-coded in chunks that each choose their parameter.
constexpr uint32_t kChunkGaps = 128;
constexpr unsigned kRiceParamBits = 5;
constexpr unsigned kEscapeOnes = 24;  // a quotient this large is sent as the raw gap instead
constexpr unsigned kEscapeRawBits = 32;
// Most bytes one chunk can take (5 + 128 * 56 bits), plus a whole word for the writer's 8-byte stores.
constexpr uint64_t kChunkRoom = (kRiceParamBits + kChunkGaps * (kEscapeOnes + kEscapeRawBits)) / 8 + 16;

// Version 2 sections are two streams behind the first's byte count (docs/FORMAT.md section 4).
constexpr uint64_t kSplitHeaderBytes = 4;
// Gaps in the first stream of a version-2 section of `count` gaps: the first half of the chunks, rounded up.
inline uint64_t split_first_count(uint64_t count) {
  const uint64_t chunks = (count + kChunkGaps - 1) / kChunkGaps;
  const uint64_t first = (chunks + 1) / 2 * kChunkGaps;
  return first < count ? first : count;
}

// The position writer's state between calls, so the stream can grow between them.
struct PositionWriter {
  uint64_t acc = 0;        // bits not yet stored for good, the next at bit 0
  unsigned filled = 0;     // how many bits of acc are stream bits (< 8 between codes)
  uint64_t flushed = 0;    // whole bytes stored for good
  uint64_t total_bits = 0;
  uint32_t prev_plus_one = 0;  // gap_i = idx_i - idx_{i-1} - 1, with idx_{-1} = -1
};

// What reading a position section found. The caller turns a failure into a FormatError: the coders
// are compiled once per target and keep to builtins (no exceptions, no library templates), so no
// function of theirs can stand in for a baseline one at link time.
struct PositionRead {
  enum Status { kOk, kOutOfRange, kTruncated, kTrailingBytes, kPaddingNotZero, kBadSplit };
  Status status = kOk;
  uint64_t position = 0;  // kOutOfRange: the offending position
};

}  // namespace adlcodec
