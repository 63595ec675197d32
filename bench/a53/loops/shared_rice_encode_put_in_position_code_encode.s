// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): put(((uint64_t(1) << q) - 1) | ((gap & low_mask) << (q + 1)), q + 1 + k);
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 1 element(s) per iteration
lsr w1, w1, w14
add w7, w1, w3
add w18, w1, 1
lsl x19, x0, x3
add w7, w7, w17
and x0, x16, x0
lsl x20, x15, x1
sub x20, x20, #1
lsl x0, x0, x18
lsr w18, w7, 3
orr x0, x0, x20
lsl x2, x24, x3
orr x2, x2, x6
uxtw x20, w18
cmp w1, 23
lsl x0, x0, x3
orr x19, x19, x2, lsr 24
lsl w18, w18, 3
orr x0, x0, x6
add x1, x8, x4
bls .L194
str x0, [x8, x4]
add w10, w10, 1
and w3, w7, 7
add x4, x4, x20
add x11, x11, 4
cmp w9, w10
lsr x6, x0, x18
bls .L143
ldr w1, [x11]
uxtw x0, w1
