// csrc/kernel_scalar.cpp: all_finite &= std::fabs(H) <= 3.40282347e+38f;
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb0EEEPjPKfS4_PfmjjS2_S5_Pb.constprop.0; 1 element(s) per iteration
ldr s0, [x8, x1, lsl 2]
ldr s1, [x9, x1, lsl 2]
fadd s1, s0, s1
fadd s0, s0, s1
fabs s0, s0
fcmpe s0, s3
cset w12, ls
fcmp s1, #0.0
and w11, w11, w12
fccmpe s0, s2, 1, ne
cset w12, ge
cbz w12, .L50
add w12, w4, w1
str w12, [x0], 4
add x1, x1, 1
str s1, [x6], 4
cmp x10, x1
bne .L51
