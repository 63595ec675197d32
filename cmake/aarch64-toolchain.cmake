# Cross toolchain for the Raspberry Pi wheel: Debian's aarch64-linux-gnu GCC, tuned for the Pi 3B+'s
# Cortex-A53. -mcpu=cortex-a53 is plain Armv8.0-A (+crc), so the result runs on every 64-bit Pi.
# Python headers come from an aarch64 Debian sysroot that scripts/aarch64.sh unpacks.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-a53")
set(CMAKE_CXX_FLAGS_INIT "-mcpu=cortex-a53")

if(DEFINED ENV{ADLCODEC_AARCH64_SYSROOT})
  set(ADLCODEC_AARCH64_SYSROOT "$ENV{ADLCODEC_AARCH64_SYSROOT}")
else()
  get_filename_component(ADLCODEC_AARCH64_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../.cache/aarch64/sysroot" ABSOLUTE)
endif()
if(NOT EXISTS "${ADLCODEC_AARCH64_SYSROOT}/usr/include/python3.11/Python.h")
  message(FATAL_ERROR "no aarch64 Python 3.11 headers in ${ADLCODEC_AARCH64_SYSROOT}: run scripts/aarch64.sh build")
endif()

# The compiler brings its own aarch64 libc; the sysroot only adds Python headers and libraries.
set(CMAKE_FIND_ROOT_PATH "${ADLCODEC_AARCH64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)  # pybind11's CMake config lives in the host build venv

# An extension module needs only the headers and the ABI tag; there is no aarch64 interpreter to probe.
set(PYBIND11_USE_CROSSCOMPILING ON)
set(Python_INCLUDE_DIR "${ADLCODEC_AARCH64_SYSROOT}/usr/include/python3.11" CACHE PATH "")
set(Python_SOABI "cpython-311-aarch64-linux-gnu" CACHE STRING "")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L "${ADLCODEC_AARCH64_SYSROOT}")
