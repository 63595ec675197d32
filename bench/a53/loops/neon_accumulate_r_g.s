// csrc/kernel_neon.cpp: vst1q_f32(residual + i, vaddq_f32(r0, g0));
// function _ZN8adlcodec12_GLOBAL__N_115accumulate_neonEPKfPfm; 16 element(s) per iteration
ldp q2, q3, [x3]
ldp q7, q6, [x4, 16]
ldp q1, q0, [x3, 32]
ldr q4, [x4, 48]
ldr q5, [x4], 64
fadd v3.4s, v3.4s, v7.4s
fadd v1.4s, v1.4s, v6.4s
fadd v2.4s, v2.4s, v5.4s
fadd v0.4s, v0.4s, v4.4s
stp q2, q3, [x3]
stp q1, q0, [x3, 32]
add x3, x3, 64
cmp x5, x3
bne .L3
