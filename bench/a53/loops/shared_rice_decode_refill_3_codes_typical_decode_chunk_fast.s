// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): while (i + 3 <= len) step<true>(out, i, len);
// function _ZN8adlcodec12_GLOBAL__N_113position_code13decode_chunksEPKhmRmmmS4_Pj; 3 element(s) per iteration
add x12, x6, 3
cmp x21, x12
bcc .L291
ldr x4, [x7]
sub w14, w22, w2
orr w15, w2, 56
add x17, x6, 1
mvn x4, x4
lsr w14, w14, 3
add x7, x7, x14
add x14, x20, x6, lsl 2
lsl x2, x4, x2
orr x5, x2, x5
orr x30, x5, -9223372036854775808
rbit x30, x30
clz x30, x30
add w4, w30, 1
add w2, w11, w30
lsl x16, x30, x8
cmp w30, 23
lsr x4, x5, x4
bic x4, x9, x4
orr x4, x4, x16
ble .L286
lsr x5, x5, x2
orr x16, x5, -9223372036854775808
rbit x16, x16
add x4, x4, x0
clz x16, x16
add x0, x4, 1
str w4, [x20, x6, lsl 2]
add w4, w16, 1
lsl x30, x16, x8
sub w2, w15, w2
lsr x4, x5, x4
bic x4, x9, x4
orr x4, x4, x30
add w15, w11, w16
cmp w16, 23
add x4, x4, x0
bgt .L314
cmp w2, w15
bcc .L314
lsr x5, x5, x15
orr x16, x5, -9223372036854775808
rbit x16, x16
add x0, x4, 1
clz x16, x16
str w4, [x14, 4]
add w4, w16, 1
sub w2, w2, w15
lsl x17, x16, x8
add x6, x6, 2
lsr x4, x5, x4
bic x4, x9, x4
orr x4, x4, x17
add w15, w11, w16
cmp w16, 23
add x4, x4, x0
bgt .L287
cmp w2, w15
bcc .L287
sub w2, w2, w15
add x0, x4, 1
mov x6, x12
lsr x5, x5, x15
str w4, [x14, 8]
