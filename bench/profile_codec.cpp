// Repeatable cost measurement of the C++ core, for callgrind (instruction counts and simulated branch
// mispredictions do not depend on the machine's load) and perf. Not the timing of record:
// bench/bench_codec.py is.
//
//   cmake -S . -B build/profile -DSKBUILD_PROJECT_NAME=adlcodec -DADLCODEC_BUILD_PYTHON=OFF \
//         -DADLCODEC_BUILD_PROFILE=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-g
//   cmake --build build/profile
//   valgrind --tool=callgrind --instr-atstart=no --branch-sim=yes \
//       build/profile/adlcodec_profile encode 1048576 50 1     # "Collected: Ir Bc Bcm Bi Bim"
//   callgrind_annotate --auto=yes --show=Ir,Bcm callgrind.out.<pid> csrc/format.cpp
//   perf record -e cpu-clock build/profile/adlcodec_profile decode 1048576 50 8 2000 && perf report
//
// (This VM exposes no hardware counters: `perf stat -e cycles,instructions` says "not supported",
// but perf record with the cpu-clock software event works.)
//
// Arguments: encode|encode-out|decode N BIN BITS [REPEATS=1] [KERNEL]. The residual is first brought to a steady
// state (30 steps of fresh N(0,1) gradients into one residual, as bench/bench_codec.py does; the
// generator differs from numpy's, the statistics do not), then REPEATS operations run, each alone
// between CALLGRIND_START/STOP_INSTRUMENTATION and timed alone; an encode starts from a fresh copy of
// the steady-state residual every time. Printed: the payload's size and CRC, the CRC of the updated
// residual (encode) or of the decoded tensor (decode), so a change that alters a single output byte
// shows here too, and the minimum and median milliseconds per operation.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "adlcodec.h"
#include "bits.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s encode|encode-out|decode N BIN BITS [REPEATS] [KERNEL]\n", argv[0]);
    return 2;
  }
  const std::string op = argv[1];
  const uint64_t n = std::strtoull(argv[2], nullptr, 10);
  adlcodec::EncodeOptions options;
  options.bin_size = static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10));
  options.bits = std::atoi(argv[4]);
  const int repeats = argc > 5 ? std::atoi(argv[5]) : 1;
  if (argc > 6) adlcodec::set_kernel(argv[6]);

  std::mt19937_64 rng(0);
  std::normal_distribution<float> normal;
  std::vector<float> grad(n), residual(n, 0.0f), work(n), out(n);
  const uint64_t dims[1] = {n};
  auto fresh = [&] {
    for (float& g : grad) g = normal(rng);
  };
  for (int step = 0; step < 30; ++step) {
    fresh();
    adlcodec::encode(grad.data(), residual.data(), n, dims, 1, options);
  }
  fresh();

  adlcodec::Payload payload;
  std::vector<double> ms;  // each operation alone: the minimum is what a shared machine distorts least
  using Clock = std::chrono::steady_clock;
  if (op == "encode-out") {
    // Out of place, as the DDP hook calls it: the residual is only read, so it needs no fresh copy.
    for (int r = 0; r < repeats; ++r) {
      const auto begin = Clock::now();
      CALLGRIND_START_INSTRUMENTATION;
      payload = adlcodec::encode(grad.data(), residual.data(), work.data(), n, dims, 1, options);
      CALLGRIND_STOP_INSTRUMENTATION;
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
    }
  } else if (op == "encode") {
    for (int r = 0; r < repeats; ++r) {
      work = residual;  // outside the instrumented and timed region
      const auto begin = Clock::now();
      CALLGRIND_START_INSTRUMENTATION;
      payload = adlcodec::encode(grad.data(), work.data(), n, dims, 1, options);
      CALLGRIND_STOP_INSTRUMENTATION;
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
    }
  } else if (op == "decode") {
    work = residual;
    payload = adlcodec::encode(grad.data(), work.data(), n, dims, 1, options);
    for (int r = 0; r < repeats; ++r) {
      const auto begin = Clock::now();
      CALLGRIND_START_INSTRUMENTATION;
      adlcodec::decode(payload.data(), payload.size, out.data(), n, false);
      CALLGRIND_STOP_INSTRUMENTATION;
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
    }
  } else {
    std::fprintf(stderr, "unknown operation %s\n", op.c_str());
    return 2;
  }
  std::sort(ms.begin(), ms.end());

  const adlcodec::PayloadInfo info = adlcodec::inspect(payload.data(), payload.size);
  uint32_t residual_crc = adlcodec::crc32c(reinterpret_cast<const uint8_t*>(work.data()), 4 * n);
  uint32_t out_crc = op == "decode" ? adlcodec::crc32c(reinterpret_cast<const uint8_t*>(out.data()), 4 * n) : 0;
  std::printf("%s n=%llu bin=%u bits=%d kernel=%s selected=%u (%.4f) payload=%zu crc=%08x residual_crc=%08x "
              "out_crc=%08x  min %.3f ms, median %.3f ms\n",
              op.c_str(), static_cast<unsigned long long>(n), options.bin_size, options.bits,
              adlcodec::active_kernel_name(), info.selected, double(info.selected) / double(n), payload.size,
              adlcodec::get_u32(payload.data() + payload.size - 4), residual_crc, out_crc, ms.front(), ms[ms.size() / 2]);
  return 0;
}
