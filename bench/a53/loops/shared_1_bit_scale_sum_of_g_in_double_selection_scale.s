// csrc/format.cpp: sum += std::fabs(static_cast<double>(selected_values[i]));
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 1 element(s) per iteration
ldr s1, [x5, x0, lsl 2]
add x0, x0, 1
cmp x19, x0
fabs s1, s1
fcvt d1, s1
fadd d0, d0, d1
bhi .L705
