// csrc/kernel_neon.cpp: i += kBlock) {  // loop 2, steady state
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb0EEEPjPKfS4_PfmjjS2_S5_Pb; 16 element(s) per iteration
add x7, x7, 16
add x2, x2, 64
cmp x7, x9
add x5, x5, 64
bne .L43
#APP
facgt v4.4s, v5.4s, v4.4s
#NO_APP
#APP
facgt v1.4s, v5.4s, v1.4s
#NO_APP
#APP
facgt v0.4s, v5.4s, v0.4s
#NO_APP
#APP
facgt v6.4s, v5.4s, v6.4s
#NO_APP
uzp1 v0.8h, v0.8h, v4.8h
uzp1 v6.8h, v6.8h, v1.8h
ldp q18, q17, [x2, 32]
ldp q7, q1, [x5, 32]
uzp1 v0.16b, v0.16b, v6.16b
ldp q20, q19, [x2]
ldp q16, q4, [x5]
fadd v6.4s, v7.4s, v18.4s
shrn v7.8b, v0.8h, 4
fadd v16.4s, v16.4s, v20.4s
fadd v4.4s, v4.4s, v19.4s
fadd v1.4s, v1.4s, v17.4s
fmov x1, d7
fadd v0.4s, v16.4s, v20.4s
fadd v4.4s, v4.4s, v19.4s
fadd v6.4s, v6.4s, v18.4s
fadd v1.4s, v1.4s, v17.4s
cmn x1, #1
bne .L91
