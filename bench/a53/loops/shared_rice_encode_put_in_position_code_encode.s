// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): put(((uint64_t(1) << q) - 1) | ((gap & low_mask) << (q + 1)), q + 1 + k);
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 1 element(s) per iteration
lsr w1, w1, w9
add w17, w1, w23
add w18, w1, 1
lsl x16, x0, x23
add w17, w17, w13
and x0, x11, x0
lsl x19, x28, x1
sub x19, x19, #1
lsl x0, x0, x18
lsr w18, w17, 3
orr x0, x0, x19
lsl x3, x24, x23
orr x3, x3, x10
uxtw x19, w18
cmp w1, 23
lsl x0, x0, x23
orr x16, x16, x3, lsr 24
lsl w18, w18, 3
orr x0, x0, x10
add x1, x2, x22
bls .L135
str x0, [x2, x22]
add w5, w5, 1
and w23, w17, 7
add x22, x22, x19
add x7, x7, 4
cmp w30, w5
lsr x10, x0, x18
bls .L80
ldr w1, [x7]
uxtw x0, w1
