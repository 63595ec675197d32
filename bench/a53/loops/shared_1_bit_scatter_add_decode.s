// csrc/format.cpp: out[positions[i]] += bits_float(scale_bits | sign);
// function _ZN8adlcodec6decodeEPKhmPfmb; 1 element(s) per iteration
ldr x2, [sp, 128]
lsr x1, x0, 3
ldr x5, [sp, 112]
and w4, w0, 7
ldr w2, [x2, x0, lsl 2]
add x0, x0, 1
cmp x5, x0
ldrb w1, [x20, x1]
ldr x5, [sp, 136]
asr w1, w1, w4
orr w1, w3, w1, lsl 31
fmov s1, w1
ldr s0, [x5, x2, lsl 2]
fadd s0, s0, s1
str s0, [x5, x2, lsl 2]
bne .L704
