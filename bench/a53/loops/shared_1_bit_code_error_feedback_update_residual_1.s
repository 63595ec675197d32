// csrc/format.cpp: for (unsigned j = 0; j < 4; ++j) out[at[j]] = residual_of[j];
// function _ZN8adlcodec12_GLOBAL__N_115update_residualILi1EEEvRKNS_6KernelEPKfS6_PfmbPKjS6_mfPh; 4 element(s) per iteration
ldp s3, s2, [x0]
cmp w7, 63
ldp s1, s0, [x0, 8]
fmov w2, s3
fmov w1, s2
ldp w14, w13, [x6]
fmov w30, s1
fmov w15, s0
and w9, w2, -2147483648
and w3, w1, -2147483648
orr w9, w9, w22
fmov s4, w9
orr w3, w3, w22
and w18, w30, -2147483648
fsub s3, s3, s4
fmov s4, w3
orr w18, w18, w22
and w17, w15, -2147483648
fsub s2, s2, s4
fmov s4, w18
orr w17, w17, w22
lsr w15, w15, 31
fsub s1, s1, s4
lsr w1, w1, 31
lsr w3, w30, 31
fmov s4, w17
ldr w9, [x6, 8]
lsr w2, w2, 31
fsub s0, s0, s4
ubfiz x15, x15, 3, 1
ubfiz x1, x1, 1, 1
ubfiz x3, x3, 2, 1
orr x2, x2, x15
orr x1, x1, x3
str s3, [x21, x14, lsl 2]
orr x1, x1, x2
str s2, [x21, w13, uxtw 2]
str s1, [x21, w9, uxtw 2]
lsl x2, x1, x19
sub w19, w19, #60
str s0, [x21, x4, lsl 2]
orr x20, x20, x2
sub w2, w28, w19
bls .L31
add x1, x16, 4
mov w19, w7
add x6, x6, 16
add x0, x0, 16
cmp x1, x26
bhi .L16
mov x16, x1
ldr w4, [x6, 12]
add w7, w19, 4
cmp x4, x24
bcs .L30
