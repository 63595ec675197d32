// csrc/format.cpp: sum += std::fabs(static_cast<double>(selected_values[i]));
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 1 element(s) per iteration
ldr s1, [x0], 4
fabs s1, s1
cmp x1, x0
fcvt d1, s1
fadd d0, d0, d1
bne .L1012
