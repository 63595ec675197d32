// csrc/kernel_scalar.cpp: for (uint64_t i = 0; i < n; ++i) out[i] = residual[i] + grad[i];
// function _ZN8adlcodec12_GLOBAL__N_117accumulate_scalarEPKfS2_Pfm; 4 element(s) per iteration
ldr q0, [x1, x4]
ldr q1, [x0, x4]
fadd v0.4s, v0.4s, v1.4s
str q0, [x2, x4]
add x4, x4, 16
cmp x5, x4
bne .L4
