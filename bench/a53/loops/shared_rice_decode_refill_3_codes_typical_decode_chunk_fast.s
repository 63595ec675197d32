// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): const unsigned ones = trailing_zeros(inv);
// function _ZN8adlcodec12_GLOBAL__N_113position_code13decode_chunksEPKhmRmmmS4_Pj; 3 element(s) per iteration
ldr x16, [x9]
sub w10, w23, w2
orr w13, w2, 56
add x6, x8, 1
mvn x16, x16
lsr w10, w10, 3
add x9, x9, x10
add x10, x21, x8, lsl 2
lsl x2, x16, x2
orr x7, x2, x7
orr x2, x7, -9223372036854775808
rbit x2, x2
clz x2, x2
cmp w2, 23
ble .L286
add w16, w2, 1
lsl x30, x2, x11
add w2, w17, w2
cmp x20, x6
lsr x16, x7, x16
bic x16, x12, x16
orr x16, x16, x30
lsr x7, x7, x2
add x0, x16, x0
str w0, [x21, x8, lsl 2]
sub w2, w13, w2
add x0, x0, 1
bls .L285
orr x30, x7, -9223372036854775808
rbit x30, x30
clz x30, x30
cmp w30, 23
bgt .L288
add w16, w17, w30
cmp w2, w16
bcc .L288
add w13, w30, 1
lsl x30, x30, x11
add x6, x8, 2
sub w2, w2, w16
lsr x13, x7, x13
bic x13, x12, x13
orr x13, x13, x30
cmp x20, x6
add x0, x13, x0
str w0, [x10, 4]
lsr x7, x7, x16
add x0, x0, 1
bls .L285
orr x16, x7, -9223372036854775808
rbit x16, x16
clz x16, x16
cmp w16, 23
bgt .L288
add w13, w17, w16
cmp w2, w13
bcc .L288
add w6, w16, 1
lsl x16, x16, x11
add x8, x8, 3
sub w2, w2, w13
lsr x6, x7, x6
bic x6, x12, x6
orr x6, x6, x16
cmp x20, x8
add x0, x6, x0
str w0, [x10, 8]
lsr x7, x7, x13
add x0, x0, 1
bls .L285
