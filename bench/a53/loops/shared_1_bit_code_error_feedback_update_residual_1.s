// csrc/format.cpp: for (unsigned j = 0; j < 4; ++j) out[at[j]] = updated[j];
// function _ZN8adlcodec12_GLOBAL__N_115update_residualILi1EEEvRKNS_6KernelEPKfS6_PfmbPKjS6_mfPh; 4 element(s) per iteration
ldp s3, s2, [x0]
cmp w14, 63
ldp s1, s0, [x0, 8]
fmov w2, s3
fmov w1, s2
ldp w18, w17, [x6]
fmov w3, s1
fmov w4, s0
and w7, w2, -2147483648
and w15, w1, -2147483648
orr w7, w7, w22
fmov s4, w7
orr w15, w15, w22
and w30, w3, -2147483648
fsub s3, s3, s4
fmov s4, w15
orr w30, w30, w22
and w7, w4, -2147483648
fsub s2, s2, s4
fmov s4, w30
orr w7, w7, w22
lsr w4, w4, 31
fsub s1, s1, s4
lsr w1, w1, 31
lsr w3, w3, 31
fmov s4, w7
ldr w15, [x6, 8]
lsr w2, w2, 31
fsub s0, s0, s4
ubfiz x4, x4, 3, 1
ubfiz x1, x1, 1, 1
ubfiz x3, x3, 2, 1
orr x2, x2, x4
orr x1, x1, x3
str s3, [x21, x18, lsl 2]
orr x1, x1, x2
str s2, [x21, w17, uxtw 2]
str s1, [x21, w15, uxtw 2]
lsl x2, x1, x19
sub w19, w19, #60
str s0, [x21, x13, lsl 2]
orr x20, x20, x2
sub w2, w8, w19
bls .L125
add x1, x16, 4
mov w19, w14
add x6, x6, 16
add x0, x0, 16
cmp x1, x24
bhi .L111
mov x16, x1
ldr w13, [x6, 12]
add w14, w19, 4
cmp x13, x23
bcs .L124
