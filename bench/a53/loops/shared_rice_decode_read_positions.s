// csrc/format.cpp: in.skip(ones + 1 + k);
// function _ZN8adlcodec6decodeEPKhmPfmb; 1 element(s) per iteration
add w12, w1, 1
ldr w3, [sp, 108]
lsl x2, x2, x23
add w1, w3, w1
lsr x0, x0, x12
and x0, x0, x20
orr x0, x0, x2
add x25, x25, w1, uxtb
add x26, x26, x0
b .L1357
cmp x19, x26
bls .L1541
str w26, [x21], 4
add x26, x26, 1
cmp x21, x22
bne .L1366
lsr x1, x25, 3
str xzr, [sp, 352]
add x0, x1, 8
cmp x0, x28
bhi .L1348
cmp x1, x28
bcc .L1545
mov w1, 0
mov x2, 0
mov x0, 0
