// csrc/kernel_neon.cpp: const uint32x4_t below = vandq_u32(vcagtq_f32(vbin_max, H0), vcagtq_f32(vbin_max, H1));
// function _ZN8adlcodec12_GLOBAL__N_117analyze_bins_neonEPKfS2_mjjPjPfPb; 8 element(s) per iteration
ldr q2, [x8, x10]
ldr q0, [x16, x10]
ldr q1, [x6, x10]
ldr q3, [x15, x10]
fadd v1.4s, v1.4s, v2.4s
fadd v3.4s, v3.4s, v0.4s
fadd v2.4s, v2.4s, v1.4s
fadd v0.4s, v0.4s, v3.4s
fabs v2.4s, v2.4s
fabs v0.4s, v0.4s
fcmgt v16.4s, v17.4s, v2.4s
fcmgt v18.4s, v17.4s, v0.4s
and v16.16b, v16.16b, v18.16b
xtn v16.4h, v16.4s
fmov x1, d16
cmn x1, #1
beq .L39
add x7, x7, 8
add x10, x10, 32
cmp x9, x7
bhi .L41
