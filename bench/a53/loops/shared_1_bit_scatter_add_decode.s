// csrc/format.cpp: for (; next < count && idx[next] < end; ++next) out[idx[next]] += value(next);
// function _ZN8adlcodec12_GLOBAL__N_111write_denseILi1EEEvPKjPKhmfPfmb; 1 element(s) per iteration
ldrb w6, [x25, x6]
add x19, x19, 1
ldr s0, [x20, x7, lsl 2]
cmp x22, x19
asr w6, w6, w3
orr w6, w24, w6, lsl 31
fmov s1, w6
fadd s0, s0, s1
str s0, [x20, x7, lsl 2]
beq .L187
ldr w7, [x23, x19, lsl 2]
lsr x6, x19, 3
and w3, w19, 7
cmp x21, x7
bhi .L172
