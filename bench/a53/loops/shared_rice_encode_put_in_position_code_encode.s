// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): put(((uint64_t(1) << q) - 1) | ((gap & low_mask) << (q + 1)), q + 1 + k);
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 1 element(s) per iteration
lsr w25, w3, w12
add w3, w25, w0
add w23, w25, 1
lsl x7, x2, x0
add w3, w3, w18
and x2, x17, x2
lsl x21, x19, x25
sub x21, x21, #1
lsl x2, x2, x23
lsr w23, w3, 3
orr x2, x2, x21
lsl x4, x20, x0
orr x4, x4, x10
uxtw x21, w23
cmp w25, 23
lsl x2, x2, x0
orr x7, x7, x4, lsr 24
lsl w23, w23, 3
orr x2, x2, x10
add x25, x14, x9
bls .L154
str x2, [x14, x9]
add w11, w11, 1
and w0, w3, 7
add x9, x9, x21
add x13, x13, 4
cmp w16, w11
lsr x10, x2, x23
bls .L120
ldr w3, [x13]
uxtw x2, w3
