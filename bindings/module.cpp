// pybind11 bindings: argument checks and zero-copy buffer plumbing only; the algorithms live in csrc/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "adlcodec.h"

namespace py = pybind11;

namespace {

// A read-only view of any C-contiguous buffer (bytes, bytearray, memoryview, numpy), as bytes.
class ByteView {
 public:
  explicit ByteView(const py::handle& obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_C_CONTIGUOUS) != 0) {
      PyErr_Clear();
      throw py::type_error("payload must be a C-contiguous bytes-like object, got " +
                           std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
  }
  ~ByteView() { PyBuffer_Release(&view_); }
  ByteView(const ByteView&) = delete;
  ByteView& operator=(const ByteView&) = delete;
  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

void require_float32(const py::array& a, const char* name) {
  if (!a.dtype().equal(py::dtype::of<float>()))
    throw py::type_error(std::string(name) + " must be float32, got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous (use np.ascontiguousarray or .contiguous())");
  // The kernels load and store whole floats (and vectors of them): an address that is not a multiple
  // of 4 is undefined behaviour in C++, however well x86 hides it.
  if (a.nbytes() > 0 && reinterpret_cast<uintptr_t>(a.data()) % alignof(float) != 0)
    throw py::value_error(std::string(name) + " is not aligned to 4 bytes (e.g. np.frombuffer at an odd offset); "
                          "pass a copy (np.array(x)) instead");
}

void require_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + " must be writeable");
}

bool overlaps(const py::array& a, const py::array& b) {
  const auto* a0 = static_cast<const char*>(a.data());
  const auto* b0 = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

py::array_t<uint8_t> to_numpy(adlcodec::Payload&& payload) {
  const auto size = static_cast<py::ssize_t>(payload.size);
  uint8_t* bytes = payload.bytes.release();
  py::capsule release(bytes, [](void* p) { delete[] static_cast<uint8_t*>(p); });
  return py::array_t<uint8_t>(size, bytes, release);
}

py::array_t<uint8_t> compress(const py::array& grad, py::array& residual, int64_t bin_size, int bits,
                              bool check_finite, std::optional<py::array> residual_out) {
  require_float32(grad, "grad");
  require_float32(residual, "residual");
  if (grad.size() != residual.size())
    throw py::value_error("residual has " + std::to_string(residual.size()) + " elements, grad has " +
                          std::to_string(grad.size()));
  if (overlaps(grad, residual)) throw py::value_error("grad and residual must not share memory");
  py::array& target = residual_out ? *residual_out : residual;
  if (residual_out) {
    require_float32(target, "residual_out");
    if (target.size() != residual.size())
      throw py::value_error("residual_out has " + std::to_string(target.size()) + " elements, residual has " +
                            std::to_string(residual.size()));
    if (overlaps(grad, target)) throw py::value_error("grad and residual_out must not share memory");
    // The kernels read a chunk of the residual before writing it: the same buffer is fine, a shifted one not.
    if (overlaps(residual, target) && target.data() != residual.data())
      throw py::value_error("residual_out must be residual itself or share no memory with it");
  }
  require_writeable(target, residual_out ? "residual_out" : "residual");
  if (bin_size < 1 || bin_size > int64_t(UINT32_MAX))
    throw py::value_error("bin_size must be between 1 and 2^32-1, got " + std::to_string(bin_size));
  if (!adlcodec::is_valid_bits(bits))
    throw py::value_error("bits must be one of 1, 2, 4, 8, 16, 32; got " + std::to_string(bits));

  std::vector<uint64_t> dims(grad.shape(), grad.shape() + grad.ndim());
  adlcodec::EncodeOptions options;
  options.bin_size = static_cast<uint32_t>(bin_size);
  options.bits = bits;
  options.check_finite = check_finite;
  const auto* g = static_cast<const float*>(grad.data());
  const auto* r = static_cast<const float*>(residual.data());
  auto* out = static_cast<float*>(target.mutable_data());
  const auto numel = static_cast<uint64_t>(grad.size());
  adlcodec::Payload payload;
  {
    py::gil_scoped_release release;
    payload = adlcodec::encode(g, r, out, numel, dims.data(), static_cast<int>(dims.size()), options);
  }
  return to_numpy(std::move(payload));
}

py::dict info_dict(const adlcodec::PayloadInfo& info) {
  py::dict d;
  d["version"] = info.version;
  d["dtype"] = "float32";
  d["shape"] = py::tuple(py::cast(info.shape));
  d["numel"] = info.numel;
  d["bin_size"] = info.bin_size;
  d["bits"] = info.bits;
  d["selected"] = info.selected;
  d["scale"] = info.scale;
  d["nbytes"] = info.nbytes;
  d["ratio"] = info.nbytes ? double(info.numel) * 4.0 / double(info.nbytes) : 0.0;
  return d;
}

py::dict inspect(const py::handle& payload) {
  ByteView bytes(payload);
  return info_dict(adlcodec::inspect(bytes.data(), bytes.size()));
}

py::array decompress(const py::handle& payload, const py::object& out, bool accumulate) {
  ByteView bytes(payload);
  py::array target;
  if (out.is_none()) {
    const adlcodec::PayloadInfo info = adlcodec::inspect(bytes.data(), bytes.size());
    std::vector<py::ssize_t> shape(info.shape.begin(), info.shape.end());
    target = py::array_t<float>(shape);
    accumulate = false;
  } else {
    if (!py::isinstance<py::array>(out))
      throw py::type_error("out must be a numpy array or a CPU torch tensor");
    target = py::reinterpret_borrow<py::array>(out);
    require_float32(target, "out");
    require_writeable(target, "out");
    // Decoding reads the payload while it writes out: with the two overlapping, later reads would see
    // values already written.
    const auto* o0 = static_cast<const uint8_t*>(target.data());
    if (target.nbytes() > 0 && bytes.size() > 0 && o0 < bytes.data() + bytes.size() &&
        bytes.data() < o0 + target.nbytes())
      throw py::value_error("out must not share memory with the payload");
  }
  auto* dst = static_cast<float*>(target.mutable_data());
  const auto numel = static_cast<uint64_t>(target.size());
  {
    py::gil_scoped_release release;
    adlcodec::decode(bytes.data(), bytes.size(), dst, numel, accumulate);
  }
  return target;
}

uint32_t crc32c(const py::handle& data, bool portable) {
  ByteView bytes(data);
  return portable ? adlcodec::crc32c_portable(bytes.data(), bytes.size()) : adlcodec::crc32c(bytes.data(), bytes.size());
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "adlcodec native core";
  py::register_exception<adlcodec::FormatError>(m, "FormatError", PyExc_ValueError);
  m.attr("FORMAT_VERSION") = adlcodec::kFormatVersion;
  m.attr("MAX_NUMEL") = adlcodec::kMaxNumel;
  // Resolve ADLCODEC_KERNEL now, so a bad value fails the import with its message.
  adlcodec::active_kernel_name();

  m.def("compress", &compress, py::arg("grad"), py::arg("residual"), py::arg("bin_size"), py::arg("bits"),
        py::arg("check_finite"), py::arg("residual_out") = py::none());
  m.def("decompress", &decompress, py::arg("payload"), py::arg("out"), py::arg("accumulate"));
  m.def("inspect", &inspect, py::arg("payload"));
  m.def("crc32c", &crc32c, py::arg("data"), py::arg("portable") = false);
  m.def("kernel", [] { return std::string(adlcodec::active_kernel_name()); });
  m.def("available_kernels", &adlcodec::available_kernel_names);
  m.def("set_kernel", &adlcodec::set_kernel, py::arg("name"));
}
