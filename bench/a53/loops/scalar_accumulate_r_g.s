// csrc/kernel_scalar.cpp: for (uint64_t i = 0; i < n; ++i) residual[i] = residual[i] + grad[i];
// function _ZN8adlcodec12_GLOBAL__N_117accumulate_scalarEPKfPfm; 4 element(s) per iteration
ldr q0, [x1, x3]
ldr q1, [x0, x3]
fadd v0.4s, v0.4s, v1.4s
str q0, [x1, x3]
add x3, x3, 16
cmp x4, x3
bne .L28
