// Chooses the kernel once (ADLCODEC_KERNEL or the best the CPU has) and lets tests switch it.
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "adlcodec.h"
#include "kernels.h"

namespace adlcodec {
namespace {

std::vector<const Kernel*> available_kernels() {
  std::vector<const Kernel*> kernels{&scalar_kernel()};
#if defined(ADLCODEC_HAVE_AVX2)
  // The AVX2 file is also built for BMI1/BMI2 (the position coders' shifts and bit counts); every
  // CPU with AVX2 but a few early VIA and emulated ones has them.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2"))
    kernels.push_back(&avx2_kernel());
  // The same file built for AVX-512 Foundation (libgcc's test includes the OS saving the ZMM state).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") &&
      __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2"))
    kernels.push_back(&avx512_kernel());
#endif
#if defined(ADLCODEC_HAVE_NEON)
  kernels.push_back(&neon_kernel());  // Advanced SIMD is mandatory on aarch64
#endif
  return kernels;  // best last
}

std::string names_of(const std::vector<const Kernel*>& kernels) {
  std::string names;
  for (const Kernel* k : kernels) names += (names.empty() ? "" : ", ") + std::string(k->name);
  return names;
}

const Kernel* find_kernel(const std::string& name) {
  const auto kernels = available_kernels();
  for (const Kernel* k : kernels)
    if (name == k->name) return k;
  throw ArgumentError("kernel '" + name + "' is not available on this CPU/build (available: " +
                      names_of(kernels) + ")");
}

const Kernel* initial_kernel() {
  const char* forced = std::getenv("ADLCODEC_KERNEL");
  if (forced && *forced) return find_kernel(forced);
  return available_kernels().back();
}

std::atomic<const Kernel*>& current() {
  static std::atomic<const Kernel*> kernel{initial_kernel()};
  return kernel;
}

}  // namespace

const Kernel& active_kernel() { return *current().load(std::memory_order_acquire); }

const char* active_kernel_name() { return active_kernel().name; }

std::vector<std::string> available_kernel_names() {
  std::vector<std::string> names;
  for (const Kernel* k : available_kernels()) names.emplace_back(k->name);
  return names;
}

void set_kernel(const std::string& name) { current().store(find_kernel(name), std::memory_order_release); }

}  // namespace adlcodec
