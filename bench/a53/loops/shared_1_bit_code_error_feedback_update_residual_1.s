// csrc/format.cpp: out[idx[next]] = G[next] - sent.value[code];
// function _ZN8adlcodec12_GLOBAL__N_115update_residualILi1EEEvRKNS_6KernelEPKfS6_PfmbPKjS6_mfPh; 1 element(s) per iteration
ldr s1, [x6, x8, lsl 2]
add x19, x19, 1
cmp x27, x19
fsub s0, s0, s1
str s0, [x28, x9, lsl 2]
bne .L7
ldr w9, [x22, x19, lsl 2]
cmp x26, x9
bls .L32
ldr s0, [x25, x19, lsl 2]
fmov w0, s0
lsr w8, w0, 31
lsl x10, x8, x20
add w20, w20, 1
orr x21, x21, x10
cmp w20, 64
beq .L33
