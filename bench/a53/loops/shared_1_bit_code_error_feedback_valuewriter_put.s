// csrc/format.cpp: stream_.put(code, unsigned(Bits));
// function _ZN8adlcodec12_GLOBAL__N_115update_residualILi8EEEvRKNS_6KernelEPKfPfmPKjS6_mfPh; 1 element(s) per iteration
fmov s1, w9
orr w8, w8, w10, lsl 7
orr x8, x8, x20
str x8, [x24], 1
orr v1.8b, v1.8b, v3.8b
ldr w1, [x23, x19, lsl 2]
add x19, x19, 1
lsr x20, x8, 8
cmp x27, x19
fsub s2, s2, s1
str s2, [x26, x1, lsl 2]
beq .L250
ldr w1, [x23, x19, lsl 2]
fmov s3, s8
mov w8, 127
cmp x1, x25
bcc .L251
ldr s2, [x28, x19, lsl 2]
fabs s1, s2
fmov w1, s2
fdiv s1, s1, s8
and w9, w1, -2147483648
lsr w10, w9, 31
fmul s1, s1, s9
fadd s1, s1, s10
fcmpe s1, s0
bge .L248
fmul s3, s8, s11
mov w8, 0
