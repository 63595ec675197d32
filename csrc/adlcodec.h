// adlcodec core: binned residual ("AdaComp"-family) gradient compression.
// Pure C++17, no Python. Wire format: docs/FORMAT.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace adlcodec {

constexpr uint8_t kFormatVersion = 2;  // written; every version from 1 up to it is read
constexpr uint8_t kDtypeFloat32 = 1;
constexpr int kMaxDims = 32;
// Positions travel as 32-bit indices, so one tensor holds at most 2^32 - 1 elements.
constexpr uint64_t kMaxNumel = 0xFFFFFFFFull;

// A payload that is truncated, corrupted or not ours.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller error: bad sizes, bad options, non-finite input. Maps to ValueError.
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct EncodeOptions {
  uint32_t bin_size = 50;
  int bits = 1;
  // Scan r + 2g for NaN/Inf first, so that a bad gradient leaves the residual untouched.
  bool check_finite = true;
};

bool is_valid_bits(int bits);

// An encoded payload. Owns its bytes; not zero-initialized before the encoder fills every byte.
struct Payload {
  std::unique_ptr<uint8_t[]> bytes;
  size_t size = 0;
  const uint8_t* data() const { return bytes.get(); }
};

// Compresses `grad` with error feedback in `residual` (both `numel` floats, updated in place).
// `dims` describes the tensor's shape for the receiver; their product must equal numel.
Payload encode(const float* grad, float* residual, uint64_t numel, const uint64_t* dims, int ndim,
               const EncodeOptions& options);
// The same, with the updated residual written to `residual_out` (numel floats, the residual itself or
// memory shared with neither input) and `residual` only read: a caller that may have to drop the
// update (DDP, when another rank's gradient was not finite) needs no copy of the residual first.
// When encoding fails `residual` is unchanged and `residual_out` holds nothing usable: out of place,
// the residual update is written in the same pass that finds a non-finite input (one pass over memory
// fewer), so a failed call may have written part of it.
Payload encode(const float* grad, const float* residual, float* residual_out, uint64_t numel, const uint64_t* dims,
               int ndim, const EncodeOptions& options);

struct PayloadInfo {
  uint8_t version = 0;
  uint8_t dtype = 0;
  int bits = 0;
  uint32_t bin_size = 0;
  std::vector<uint64_t> shape;
  uint64_t numel = 0;
  uint32_t selected = 0;
  float scale = 0.0f;
  size_t nbytes = 0;
  size_t positions_nbytes = 0;
  size_t values_nbytes = 0;
};

// Validates the header, section sizes and checksum; throws FormatError otherwise.
PayloadInfo inspect(const uint8_t* data, size_t size);

// Validates the whole payload, then writes (or adds) the dense tensor into `out`.
// Nothing is written to `out` unless the payload is valid.
void decode(const uint8_t* data, size_t size, float* out, uint64_t out_numel, bool accumulate);

// CRC-32C (Castagnoli), as stored in the payload trailer.
uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc = 0);
// The table-driven fallback used where the CPU has no CRC32C instruction (exposed for tests).
uint32_t crc32c_portable(const uint8_t* data, size_t size, uint32_t crc = 0);

// Kernel selection. The active kernel is chosen once, at first use: ADLCODEC_KERNEL if set
// (an unknown or unavailable name is an error), else the best the CPU supports.
const char* active_kernel_name();
std::vector<std::string> available_kernel_names();
void set_kernel(const std::string& name);

}  // namespace adlcodec
