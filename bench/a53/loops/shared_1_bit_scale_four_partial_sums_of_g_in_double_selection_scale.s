// csrc/format.cpp: p0 += std::fabs(static_cast<double>(selected_values[i]));
// function _ZN8adlcodec6encodeEPKfS1_PfmPKmiRKNS_13EncodeOptionsE; 4 element(s) per iteration
ldr q0, [x1], 16
add x0, x0, 1
cmp x2, x0
fabs v0.4s, v0.4s
fcvtl v3.2d, v0.2s
fcvtl2 v0.2d, v0.4s
fadd v1.2d, v1.2d, v3.2d
fadd v2.2d, v2.2d, v0.2d
bhi .L952
