// csrc/kernel_neon.cpp: i += kBlock) {  // loop 1, steady state
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb0EEEPjPKfS4_PfmjjS2_S5_Pb; 16 element(s) per iteration
ldp q24, q22, [x1]
ldp q23, q21, [x2]
ldp q20, q18, [x1, 32]
add x1, x1, 64
ldp q19, q7, [x2, 32]
cmp x5, x1
fabs v6.4s, v6.4s
add x2, x2, 64
fabs v5.4s, v5.4s
fabs v4.4s, v4.4s
fabs v1.4s, v1.4s
fmaxnm v0.4s, v0.4s, v6.4s
fmaxnm v2.4s, v2.4s, v5.4s
fmaxnm v17.4s, v17.4s, v4.4s
fmaxnm v16.4s, v16.4s, v1.4s
fadd v6.4s, v24.4s, v23.4s
fadd v5.4s, v22.4s, v21.4s
fadd v4.4s, v20.4s, v19.4s
fadd v1.4s, v18.4s, v7.4s
bne .L32
