// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): const unsigned ones = trailing_zeros(inv);
// function _ZN8adlcodec12_GLOBAL__N_113position_code13decode_chunksEPKhmRmmmS4_Pj; 1 element(s) per iteration
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
mov x8, x6
b .L289
