// csrc/format.cpp: for (unsigned j = 0; j < 8; ++j) out[idx[next + j]] += v[j];
// function _ZN8adlcodec12_GLOBAL__N_111write_denseILi1EEEvPKjPKhmfPfmb; 8 element(s) per iteration
ldp w12, w11, [x1]
cmp x0, x9
ldp w10, w8, [x1, 8]
add x0, x0, 8
ldr s0, [x20, x12, lsl 2]
ldp w7, w6, [x1, 16]
fadd s0, s0, s16
ldp w5, w3, [x1, 24]
add x1, x1, 32
str s0, [x20, x12, lsl 2]
ldr s0, [x20, x11, lsl 2]
fadd s0, s0, s7
str s0, [x20, x11, lsl 2]
ldr s0, [x20, x10, lsl 2]
fadd s0, s0, s6
str s0, [x20, x10, lsl 2]
ldr s0, [x20, x8, lsl 2]
fadd s0, s0, s5
str s0, [x20, x8, lsl 2]
ldr s0, [x20, x7, lsl 2]
fadd s0, s0, s4
str s0, [x20, x7, lsl 2]
ldr s0, [x20, x6, lsl 2]
fadd s0, s0, s3
str s0, [x20, x6, lsl 2]
ldr s0, [x20, x5, lsl 2]
fadd s0, s0, s2
str s0, [x20, x5, lsl 2]
ldr s0, [x20, x3, lsl 2]
fadd s0, s0, s1
str s0, [x20, x3, lsl 2]
beq .L28
lsr x13, x0, 3
add x3, x13, 8
cmp x26, x3
bcc .L55
ldr x3, [x22, x13]
and x12, x3, 1
ubfx x11, x3, 1, 1
ubfx x10, x3, 2, 1
ubfx x8, x3, 3, 1
ubfx x7, x3, 4, 1
ubfx x6, x3, 5, 1
ubfx x5, x3, 6, 1
ubfx x3, x3, 7, 1
add x12, x12, 8
add x11, x11, 8
add x10, x10, 8
add x8, x8, 8
add x7, x7, 8
add x6, x6, 8
add x5, x5, 8
add x3, x3, 8
ldr s16, [x2, x12, lsl 2]
ldr s7, [x2, x11, lsl 2]
ldr s6, [x2, x10, lsl 2]
ldr s5, [x2, x8, lsl 2]
ldr s4, [x2, x7, lsl 2]
ldr s3, [x2, x6, lsl 2]
ldr s2, [x2, x5, lsl 2]
ldr s1, [x2, x3, lsl 2]
b .L30
