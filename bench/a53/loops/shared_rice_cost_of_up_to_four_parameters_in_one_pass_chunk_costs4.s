// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): c0 += q0 < kEscapeOnes ? q0 + 1 + k0 : kEscapeOnes + kEscapeRawBits;
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 4 element(s) per iteration
ldr q0, [x7], 16
ushl v4.4s, v0.4s, v26.4s
cmp x16, x7
ushl v3.4s, v0.4s, v25.4s
ushl v2.4s, v0.4s, v24.4s
ushl v0.4s, v0.4s, v23.4s
add v22.4s, v30.4s, v4.4s
add v21.4s, v29.4s, v3.4s
add v20.4s, v28.4s, v2.4s
add v19.4s, v27.4s, v0.4s
cmhs v4.4s, v5.4s, v4.4s
cmhs v3.4s, v5.4s, v3.4s
cmhs v2.4s, v5.4s, v2.4s
cmhs v0.4s, v5.4s, v0.4s
bsl v4.16b, v22.16b, v1.16b
bsl v3.16b, v21.16b, v1.16b
bsl v2.16b, v20.16b, v1.16b
bsl v0.16b, v19.16b, v1.16b
add v16.4s, v16.4s, v4.4s
add v17.4s, v17.4s, v3.4s
add v18.4s, v18.4s, v2.4s
add v6.4s, v6.4s, v0.4s
bne .L111
