// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): put(((((gap & low_mask) << 1) | 1) << q) - 1, q + k_plus_one);
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 1 element(s) per iteration
and x3, x8, x2
add w14, w9, w11
add x3, x3, x3
lsr w13, w0, w6
orr x0, x3, 1
add w3, w14, w13
cmp w13, 23
add x15, x7, x17
lsr w14, w3, 3
lsl x0, x0, x13
uxtw x13, w14
sub x0, x0, #1
lsl w14, w14, 3
bhi .L218
lsl x0, x0, x9
orr x0, x0, x1
and w9, w3, 7
str x0, [x7, x17]
add x17, x17, x13
lsr x1, x0, x14
add w5, w5, 1
add x12, x12, 4
cmp w23, w5
bhi .L278
ldr w0, [x12]
uxtw x2, w0
