// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): gaps[i] = chunk[i] - chunk[i - 1] - 1;
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 4 element(s) per iteration
ldr q0, [x13, x1]
add x2, x1, x8
ldr q1, [x30, x1]
add x1, x1, 16
add v0.4s, v0.4s, v7.4s
cmp x1, x4
sub v0.4s, v0.4s, v1.4s
str q0, [x2, 4]
bne .L95
