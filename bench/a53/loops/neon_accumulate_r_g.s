// csrc/kernel_neon.cpp: s0 = vaddq_f32(r0, g0);
// function _ZN8adlcodec12_GLOBAL__N_115accumulate_neonEPKfPfm; 16 element(s) per iteration
ldp q7, q6, [x5]
ldp q5, q4, [x5, 32]
stp q3, q2, [x3]
add x5, x5, 64
ldp q3, q2, [x3, 64]
stp q1, q0, [x3, 32]
ldp q1, q0, [x3, 96]
add x3, x3, 64
fadd v3.4s, v3.4s, v7.4s
cmp x3, x6
fadd v2.4s, v2.4s, v6.4s
fadd v1.4s, v1.4s, v5.4s
fadd v0.4s, v0.4s, v4.4s
bne .L4
