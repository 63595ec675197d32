// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): gaps[i] = chunk[i] - chunk[i - 1] - 1;
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 4 element(s) per iteration
ldr q0, [x8, x2]
add x3, x25, x2
ldr q2, [x10, x2]
add x2, x2, 16
add v0.4s, v0.4s, v29.4s
cmp x2, x4
sub v0.4s, v0.4s, v2.4s
str q0, [x3, 4]
bne .L166
