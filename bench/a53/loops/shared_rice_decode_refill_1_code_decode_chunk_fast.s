// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): while (i + 3 <= len) step<true>(out, i, len);
// function _ZN8adlcodec12_GLOBAL__N_113position_code21decode_rest_of_streamEPKhmRmmmS4_Pj; 1 element(s) per iteration
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
mvn x6, x2, lsr 24
sub w5, w17, #56
lsr x2, x2, 56
add x0, x0, w6, uxtw
str w0, [x20, x7, lsl 2]
mov x7, x16
add x0, x0, 1
add x14, x7, 3
cmp x21, x14
bcs .L289
