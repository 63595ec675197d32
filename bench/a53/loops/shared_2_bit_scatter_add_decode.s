// csrc/format.cpp: for (; next < count && idx[next] < end; ++next) out[idx[next]] += value(next);
// function _ZN8adlcodec12_GLOBAL__N_111write_denseILi2EEEvPKjPKhmfPfmb; 1 element(s) per iteration
ldrb w6, [x24, x6]
add x19, x19, 1
ldr s0, [x20, x7, lsl 2]
cmp x22, x19
asr w6, w6, w3
and x3, x6, 1
lsr w6, w6, 1
ldr w3, [x25, x3, lsl 2]
orr w6, w3, w6, lsl 31
fmov s1, w6
fadd s0, s0, s1
str s0, [x20, x7, lsl 2]
beq .L160
ldr w7, [x23, x19, lsl 2]
lsr x6, x19, 2
ubfiz x3, x19, 1, 2
cmp x7, x21
bcc .L145
