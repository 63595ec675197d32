// csrc/kernel_neon.cpp: const uint32x4_t keep0 = vbicq_u32(vcageq_f32(H0, vbin_max), vceqq_f32(G0, zero));
// function _ZN8adlcodec12_GLOBAL__N_117analyze_bins_neonEPKfS2_mjjPjPfPb; 9 element(s) per iteration
fcmge v18.4s, v2.4s, v17.4s
fcmge v16.4s, v0.4s, v17.4s
fcmeq v1.4s, v1.4s, 0
fcmeq v3.4s, v3.4s, 0
fcmge v2.4s, v6.4s, v2.4s
fcmge v0.4s, v6.4s, v0.4s
bic v1.16b, v18.16b, v1.16b
bic v3.16b, v16.16b, v3.16b
and v0.16b, v0.16b, v2.16b
uzp1 v1.8h, v1.8h, v3.8h
and v5.16b, v5.16b, v0.16b
xtn v0.8b, v1.8h
fmov x3, d0
cbz x3, .L39
add w11, w23, w7
rbit x1, x3
clz x1, x1
lsr w2, w1, 3
mov x1, x2
add w5, w2, w11
add x2, x2, x7
str w5, [x0], 4
lsl w1, w1, 3
ldr s0, [x6, x2, lsl 2]
lsl x1, x12, x1
ldr s1, [x8, x2, lsl 2]
bics x3, x3, x1
fadd s0, s0, s1
str s0, [x4], 4
bne .L40
add x7, x7, 8
add x10, x10, 32
cmp x9, x7
bhi .L41
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
