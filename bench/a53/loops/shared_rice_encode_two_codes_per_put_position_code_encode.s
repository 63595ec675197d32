// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): put(code0 | (code1 << bits0), bits0 + q1 + k_plus_one);
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 2 element(s) per iteration
ldp w15, w14, [x3]
add w20, w9, w11
add w12, w5, 2
add x3, x3, 8
and w2, w14, w8
and w0, w15, w8
add x16, x2, x2
add x0, x0, x0
lsr w15, w15, w6
orr x2, x0, 1
add w22, w15, w11
orr x0, x16, 1
lsr w14, w14, w6
add w16, w14, w22
lsl x0, x0, x14
add w16, w16, w20
sub x0, x0, #1
lsl x2, x2, x15
sub x2, x2, #1
orr w14, w15, w14
lsl x0, x0, x22
lsr w15, w16, 3
orr x0, x0, x2
cmp w14, 23
uxtw x2, w15
lsl w15, w15, 3
lsl x0, x0, x9
orr x0, x0, x1
bls .L214
str x0, [x7, x17]
and w9, w16, 7
add x17, x17, x2
cmp w12, w23
lsr x1, x0, x15
bhi .L217
mov w5, w12
