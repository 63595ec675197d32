// csrc/kernel_scalar.cpp: bin_max = a > bin_max ? a : bin_max;
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb0EEEPjPKfS4_PfmjjS2_S5_Pb; 1 element(s) per iteration
ldr s0, [x2, x1, lsl 2]
ldr s1, [x8, x1, lsl 2]
fadd s0, s0, s1
fabs s0, s0
fcmpe s0, s2
bgt .L33
add x1, x1, 1
cmp x9, x1
bne .L26
