// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): put(((((gap & low_mask) << 1) | 1) << q) - 1, q + k_plus_one);
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 1 element(s) per iteration
and x3, x5, x1
add w16, w22, w7
add x3, x3, x3
lsr w13, w0, w9
orr x0, x3, 1
add w3, w16, w13
cmp w13, 23
add x17, x2, x6
lsr w16, w3, 3
lsl x0, x0, x13
uxtw x13, w16
sub x0, x0, #1
lsl w16, w16, 3
bhi .L78
lsl x0, x0, x22
orr x0, x0, x10
and w22, w3, 7
str x0, [x2, x6]
add x6, x6, x13
lsr x10, x0, x16
add w4, w4, 1
add x11, x11, 4
cmp w30, w4
bhi .L135
ldr w0, [x11]
uxtw x1, w0
