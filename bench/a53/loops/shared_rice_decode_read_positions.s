// csrc/format.cpp: in.skip(ones + 1 + k);
// function _ZN8adlcodec6decodeEPKhmPfmb; 1 element(s) per iteration
add w12, w1, 1
ldr w3, [sp, 108]
lsl x2, x2, x23
add w1, w3, w1
lsr x0, x0, x12
and x0, x0, x20
orr x0, x0, x2
add x27, x27, w1, uxtb
add x24, x24, x0
b .L618
cmp x19, x24
bls .L853
str w24, [x21], 4
add x24, x24, 1
cmp x21, x22
bne .L627
lsr x1, x27, 3
str xzr, [sp, 448]
add x0, x1, 8
cmp x28, x0
bcc .L609
cmp x28, x1
bhi .L858
mov w1, 0
mov x2, 0
mov x0, 0
