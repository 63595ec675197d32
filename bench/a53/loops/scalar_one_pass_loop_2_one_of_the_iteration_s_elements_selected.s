// csrc/kernel_scalar.cpp: all_finite &= std::fabs(H) <= 3.40282347e+38f;
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb1EEEPjPKfS4_PfmjjS2_S5_Pb; 1 element(s) per iteration
ldr s0, [x2, x1, lsl 2]
ldr s1, [x9, x1, lsl 2]
fadd s1, s0, s1
fadd s0, s0, s1
fabs s0, s0
fcmpe s0, s3
cset w11, ls
fcmp s1, #0.0
and w10, w10, w11
fccmpe s0, s2, 1, ne
cset w11, ge
cbnz w11, .L65
mov x11, x0
add w0, w5, w1
str w0, [x11], 4
str s1, [x7], 4
mov x0, x11
str s1, [x12, x1, lsl 2]
add x1, x1, 1
cmp x8, x1
bne .L52
