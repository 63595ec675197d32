// csrc/kernel_scalar.cpp: all_finite &= std::fabs(H) <= 3.40282347e+38f;
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb0EEEPjPKfS4_PfmjjS2_S5_Pb; 1 element(s) per iteration
ldr s0, [x2, x1, lsl 2]
ldr s1, [x8, x1, lsl 2]
fadd s1, s0, s1
fadd s0, s0, s1
fabs s0, s0
fcmpe s0, s3
cset w11, ls
fcmp s1, #0.0
and w10, w10, w11
fccmpe s0, s2, 1, ne
cset w11, ge
cbz w11, .L27
add x1, x1, 1
cmp x9, x1
beq .L23
