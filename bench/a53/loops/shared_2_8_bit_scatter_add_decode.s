// csrc/format.cpp: out[positions[i]] += bits_float(float_bits(magnitudes[code & magnitude_mask]) | sign);
// function _ZN8adlcodec6decodeEPKhmPfmb; 1 element(s) per iteration
ldp x2, x8, [sp, 128]
udiv x0, x1, x4
ldr x9, [sp, 112]
ldr w3, [x2, x1, lsl 2]
msub x2, x0, x4, x1
ldrb w0, [x20, x0]
add x1, x1, 1
cmp x9, x1
mul x2, x2, x21
ldr s0, [x8, x3, lsl 2]
asr w0, w0, w2
and w0, w0, w6
and w2, w5, w0
lsr w0, w0, w7
ldr w2, [x19, x2, lsl 2]
orr w0, w2, w0, lsl 31
fmov s1, w0
fadd s0, s0, s1
str s0, [x8, x3, lsl 2]
bne .L710
