// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): const unsigned ones = trailing_zeros(inv);
// function _ZN8adlcodec12_GLOBAL__N_113position_code6decodeEPKhmmmPj; 3 element(s) per iteration
ldr x18, [x7]
sub w15, w23, w4
orr w0, w4, 56
add x9, x6, 1
mvn x18, x18
lsr w15, w15, 3
add x7, x7, x15
add x15, x19, x6, lsl 2
lsl x4, x18, x4
orr x5, x4, x5
orr x4, x5, -9223372036854775808
rbit x4, x4
clz x4, x4
cmp w4, 23
bgt .L326
add w18, w4, 1
lsl x30, x4, x2
add w4, w17, w4
cmp x20, x9
lsr x18, x5, x18
bic x18, x16, x18
orr x18, x18, x30
lsr x5, x5, x4
add x8, x18, x8
str w8, [x19, x6, lsl 2]
sub w4, w0, w4
add x8, x8, 1
bls .L284
orr x30, x5, -9223372036854775808
rbit x30, x30
clz x30, x30
cmp w30, 23
bgt .L287
add w18, w17, w30
cmp w4, w18
bcc .L287
add w0, w30, 1
lsl x30, x30, x2
add x9, x6, 2
sub w4, w4, w18
lsr x0, x5, x0
bic x0, x16, x0
orr x0, x0, x30
cmp x20, x9
add x0, x8, x0
str w0, [x15, 4]
add x8, x0, 1
lsr x5, x5, x18
bls .L284
orr x30, x5, -9223372036854775808
rbit x30, x30
clz x30, x30
cmp w30, 23
bgt .L287
add w18, w17, w30
cmp w18, w4
bhi .L287
add w0, w30, 1
lsl x9, x30, x2
add x6, x6, 3
sub w4, w4, w18
lsr x0, x5, x0
bic x0, x16, x0
orr x0, x0, x9
cmp x20, x6
add x0, x0, x8
str w0, [x15, 8]
add x8, x0, 1
lsr x5, x5, x18
bhi .L288
