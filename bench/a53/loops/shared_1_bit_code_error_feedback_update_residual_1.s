// csrc/format.cpp: out[idx[next]] = G[next] - sent.value[code];
// function _ZN8adlcodec12_GLOBAL__N_115update_residualILi1EEEvRKNS_6KernelEPKfS6_PfmbPKjS6_mfPh; 1 element(s) per iteration
ldr s1, [x6, x8, lsl 2]
add x19, x19, 1
cmp x27, x19
fsub s0, s0, s1
str s0, [x28, x9, lsl 2]
bne .L8
ldr w9, [x22, x19, lsl 2]
cmp x9, x26
bcs .L36
ldr s0, [x23, x19, lsl 2]
fmov w3, s0
lsr w8, w3, 31
lsl x3, x8, x20
add w20, w20, 1
orr x21, x21, x3
cmp w20, 64
beq .L37
