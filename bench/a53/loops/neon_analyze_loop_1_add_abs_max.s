// csrc/kernel_neon.cpp: max0 = vmaxnmq_f32(max0, vabsq_f32(vaddq_f32(r0, g0)));
// function _ZN8adlcodec12_GLOBAL__N_117analyze_bins_neonEPKfS2_mjjPjPfPb; 16 element(s) per iteration
ldp q3, q2, [x1, 16]
ldp q22, q21, [x2, 16]
ldr q1, [x1, 48]
ldr q20, [x2, 48]
ldr q0, [x1], 64
ldr q19, [x2], 64
fadd v3.4s, v3.4s, v22.4s
cmp x3, x1
fadd v2.4s, v2.4s, v21.4s
fadd v1.4s, v1.4s, v20.4s
fadd v0.4s, v0.4s, v19.4s
fabs v3.4s, v3.4s
fabs v2.4s, v2.4s
fabs v1.4s, v1.4s
fabs v0.4s, v0.4s
fmaxnm v18.4s, v18.4s, v3.4s
fmaxnm v17.4s, v17.4s, v2.4s
fmaxnm v16.4s, v16.4s, v1.4s
fmaxnm v4.4s, v4.4s, v0.4s
bne .L30
