// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): c0 += q0 < kEscapeOnes ? q0 + 1 + k0 : kEscapeOnes + kEscapeRawBits;
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 4 element(s) per iteration
ldr q0, [x8], 16
ushl v0.4s, v0.4s, v6.4s
cmp x12, x8
add v4.4s, v7.4s, v0.4s
cmhs v0.4s, v16.4s, v0.4s
bsl v0.16b, v4.16b, v3.16b
add v2.4s, v2.4s, v0.4s
bne .L204
