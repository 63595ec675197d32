// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): while (i < len_a && j < len_b) {
// function _ZN8adlcodec12_GLOBAL__N_113position_code12decode_splitEPKhmmmPj; 6 element(s) per iteration
cmp x7, 127
ccmp x8, x11, 2, ls
bcs .L457
ldr x1, [x10]
sub w27, w18, w3
lsl x20, x7, 2
orr w25, w3, 56
mvn x1, x1
lsr w27, w27, 3
add x10, x10, x27
add x28, x7, 1
lsl x1, x1, x3
orr x6, x1, x6
orr x1, x6, -9223372036854775808
add x27, x23, x20
rbit x1, x1
clz x1, x1
cmp w1, 23
ble .L345
add w3, w1, 1
lsl x30, x1, x14
add w1, w22, w1
cmp x7, 127
lsr x3, x6, x3
bic x3, x17, x3
orr x3, x3, x30
lsr x6, x6, x1
add x3, x3, x0
str w3, [x19, x27]
add x0, x3, 1
sub w3, w25, w1
beq .L383
orr x1, x6, -9223372036854775808
rbit x1, x1
clz x1, x1
cmp w1, 23
bgt .L385
add w25, w22, w1
cmp w3, w25
bcc .L385
add w27, w1, 1
add x20, x26, x20
lsl x1, x1, x14
sub w3, w3, w25
lsr x27, x6, x27
bic x27, x17, x27
orr x27, x27, x1
cmp x7, 126
add x27, x27, x0
str w27, [x20, 4]
add x0, x27, 1
add x1, x7, 2
lsr x6, x6, x25
beq .L388
orr x25, x6, -9223372036854775808
rbit x25, x25
clz x25, x25
cmp w25, 23
bgt .L388
add w27, w22, w25
cmp w3, w27
bcc .L388
add w1, w25, 1
lsl x25, x25, x14
sub w3, w3, w27
add x7, x7, 3
lsr x1, x6, x1
bic x1, x17, x1
orr x1, x1, x25
lsr x6, x6, x27
add x1, x1, x0
str w1, [x20, 8]
add x0, x1, 1
ldr x1, [x9]
sub w20, w18, w2
orr w25, w2, 56
add x27, x8, 1
mvn x1, x1
lsr w20, w20, 3
add x9, x9, x20
add x20, x15, x8, lsl 2
lsl x1, x1, x2
orr x1, x1, x5
orr x2, x1, -9223372036854775808
rbit x2, x2
clz x2, x2
cmp w2, 23
bgt .L456
add w28, w2, 1
lsl x5, x2, x13
add w2, w21, w2
cmp x11, x27
lsr x28, x1, x28
bic x28, x16, x28
orr x28, x28, x5
lsr x5, x1, x2
add x28, x28, x24
str w28, [x15, x8, lsl 2]
add x24, x28, 1
sub w2, w25, w2
bls .L389
orr x25, x5, -9223372036854775808
rbit x25, x25
clz x25, x25
cmp w25, 23
bgt .L391
add w28, w21, w25
cmp w2, w28
bcc .L391
add w1, w25, 1
lsl x25, x25, x13
add x30, x8, 2
sub w2, w2, w28
lsr x1, x5, x1
bic x1, x16, x1
orr x1, x1, x25
cmp x11, x30
add x1, x1, x24
str w1, [x20, 4]
add x24, x1, 1
lsr x5, x5, x28
bls .L392
orr x1, x5, -9223372036854775808
rbit x1, x1
clz x1, x1
cmp w1, 23
bgt .L394
add w25, w21, w1
cmp w2, w25
bcc .L394
add w27, w1, 1
lsl x1, x1, x13
sub w2, w2, w25
add x8, x8, 3
lsr x27, x5, x27
bic x27, x16, x27
orr x27, x27, x1
lsr x5, x5, x25
add x27, x27, x24
str w27, [x20, 8]
add x24, x27, 1
