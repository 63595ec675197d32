// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): cost += q < kEscapeOnes ? q + 1 + k : kEscapeOnes + kEscapeRawBits;
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 4 element(s) per iteration
ldr q0, [x0], 16
ushl v0.4s, v0.4s, v4.4s
cmp x0, x7
add v3.4s, v5.4s, v0.4s
cmhs v0.4s, v6.4s, v0.4s
bsl v0.16b, v3.16b, v2.16b
add v1.4s, v1.4s, v0.4s
bne .L110
