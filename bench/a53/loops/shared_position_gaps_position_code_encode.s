// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): gaps[i] = chunk[i] - chunk[i - 1] - 1;
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 4 element(s) per iteration
ldr q0, [x11, x1]
add x3, x1, x25
ldr q2, [x12, x1]
add x1, x1, 16
add v0.4s, v0.4s, v29.4s
cmp x1, x5
sub v0.4s, v0.4s, v2.4s
str q0, [x3, 4]
bne .L31
