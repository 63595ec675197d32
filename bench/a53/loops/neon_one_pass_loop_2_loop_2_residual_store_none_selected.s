// csrc/kernel_neon.cpp: i += kBlock) {  // loop 2, steady state
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb1EEEPjPKfS4_PfmjjS2_S5_Pb; 16 element(s) per iteration
add x7, x7, 16
stp q22, q21, [x2]
cmp x7, x10
stp q20, q19, [x2, 32]
add x1, x1, 64
add x4, x4, 64
add x2, x2, 64
bne .L108
#APP
facgt v1.4s, v3.4s, v0.4s
#NO_APP
#APP
facgt v4.4s, v3.4s, v4.4s
#NO_APP
#APP
facgt v2.4s, v3.4s, v2.4s
#NO_APP
uzp1 v1.8h, v1.8h, v4.8h
#APP
facgt v5.4s, v3.4s, v5.4s
#NO_APP
uzp1 v5.8h, v5.8h, v2.8h
ldp q0, q4, [x1]
ldp q26, q25, [x4]
uzp1 v1.16b, v1.16b, v5.16b
ldp q18, q2, [x1, 32]
ldp q24, q23, [x4, 32]
shrn v1.8b, v1.8h, 4
mov v22.16b, v17.16b
mov v21.16b, v16.16b
mov v20.16b, v7.16b
mov v19.16b, v6.16b
fmov x0, d1
fadd v17.4s, v26.4s, v0.4s
fadd v16.4s, v25.4s, v4.4s
fadd v7.4s, v24.4s, v18.4s
fadd v6.4s, v23.4s, v2.4s
cmn x0, #1
fadd v0.4s, v0.4s, v17.4s
fadd v4.4s, v4.4s, v16.4s
fadd v5.4s, v18.4s, v7.4s
fadd v2.4s, v2.4s, v6.4s
bne .L161
