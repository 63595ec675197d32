// csrc/kernel_neon.cpp: s0 = vaddq_f32(r0, g0);
// function _ZN8adlcodec12_GLOBAL__N_115accumulate_neonEPKfS2_Pfm; 16 element(s) per iteration
ldp q19, q17, [x5]
ldp q18, q16, [x7]
ldp q7, q5, [x5, 32]
add x5, x5, 64
ldp q6, q4, [x7, 32]
stp q3, q2, [x6]
cmp x5, x8
stp q1, q0, [x6, 32]
add x7, x7, 64
add x6, x6, 64
fadd v3.4s, v19.4s, v18.4s
fadd v2.4s, v17.4s, v16.4s
fadd v1.4s, v7.4s, v6.4s
fadd v0.4s, v5.4s, v4.4s
bne .L4
