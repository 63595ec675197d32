// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): while (i + 3 <= len) step<true>(out, i, len);
// function _ZN8adlcodec12_GLOBAL__N_113position_code21decode_rest_of_streamEPKhmRmmmS4_Pj; 3 element(s) per iteration
add x14, x7, 3
cmp x21, x14
bcc .L334
ldr x6, [x8]
sub w10, w22, w5
orr w17, w5, 56
add x16, x7, 1
mvn x6, x6
lsr w10, w10, 3
add x8, x8, x10
add x15, x20, x7, lsl 2
lsl x5, x6, x5
orr x2, x5, x2
orr x10, x2, -9223372036854775808
rbit x10, x10
clz x10, x10
add w6, w10, 1
add w5, w12, w10
lsl x30, x10, x9
cmp w10, 23
lsr x6, x2, x6
bic x6, x11, x6
orr x6, x6, x30
ble .L287
lsr x2, x2, x5
orr x10, x2, -9223372036854775808
rbit x10, x10
add x6, x6, x0
clz x10, x10
add x0, x6, 1
str w6, [x20, x7, lsl 2]
add w6, w10, 1
lsl x30, x10, x9
sub w5, w17, w5
lsr x6, x2, x6
bic x6, x11, x6
orr x6, x6, x30
add w17, w12, w10
cmp w10, 23
add x6, x6, x0
bgt .L318
cmp w5, w17
bcc .L318
lsr x2, x2, x17
orr x16, x2, -9223372036854775808
rbit x16, x16
add x0, x6, 1
clz x16, x16
str w6, [x15, 4]
add w6, w16, 1
sub w5, w5, w17
lsl x17, x16, x9
add x7, x7, 2
lsr x6, x2, x6
bic x6, x11, x6
orr x6, x6, x17
add w10, w12, w16
cmp w16, 23
add x6, x6, x0
bgt .L288
cmp w5, w10
bcc .L288
sub w5, w5, w10
add x0, x6, 1
mov x7, x14
lsr x2, x2, x10
str w6, [x15, 8]
