// csrc/kernel_scalar.cpp: bin_max = a > bin_max ? a : bin_max;
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb0EEEPjPKfS4_PfmjjS2_S5_Pb.constprop.0; 1 element(s) per iteration
ldr s0, [x8, x1, lsl 2]
ldr s1, [x9, x1, lsl 2]
fadd s0, s0, s1
fabs s0, s0
fcmpe s0, s2
bgt .L56
add x1, x1, 1
cmp x10, x1
bne .L49
