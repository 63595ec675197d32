// csrc/format.cpp: for (unsigned j = 0; j < 8; ++j) out[idx[next + j]] = v[j];
// function _ZN8adlcodec12_GLOBAL__N_111write_denseILi1EEEvPKjPKhmfPfmb; 8 element(s) per iteration
ldp w3, w2, [x0]
add x1, x18, 8
ldp w6, w5, [x0, 8]
add x19, x19, 8
ldr w4, [x0, 16]
add x16, x16, 8
str s7, [x20, x3, lsl 2]
add x15, x15, 8
ldr w3, [x0, 20]
add x13, x13, 8
str s6, [x20, x2, lsl 2]
add x12, x12, 8
ldr w2, [x0, 24]
add x11, x11, 8
str s5, [x20, x6, lsl 2]
add x10, x10, 8
str s4, [x20, x5, lsl 2]
add x9, x9, 8
str s3, [x20, x4, lsl 2]
cmp x1, x23
str s2, [x20, x3, lsl 2]
add x0, x0, 32
str s1, [x20, x2, lsl 2]
str s0, [x20, x14, lsl 2]
bhi .L50
mov x18, x1
ldr w14, [x0, 28]
cmp x14, x24
bcs .L56
lsr x4, x19, 3
and w6, w19, 7
add x1, x4, 8
cmp x26, x1
bcc .L57
ldr x1, [x22, x4]
lsr x1, x1, x6
and x8, x1, 1
ubfx x7, x1, 1, 1
ubfx x6, x1, 2, 1
ubfx x5, x1, 3, 1
ubfx x4, x1, 4, 1
ubfx x3, x1, 5, 1
ubfx x2, x1, 6, 1
ubfx x1, x1, 7, 1
add x8, x8, 8
add x7, x7, 8
add x6, x6, 8
add x5, x5, 8
add x4, x4, 8
add x3, x3, 8
add x2, x2, 8
add x1, x1, 8
ldr s7, [x21, x8, lsl 2]
ldr s6, [x21, x7, lsl 2]
ldr s5, [x21, x6, lsl 2]
ldr s4, [x21, x5, lsl 2]
ldr s3, [x21, x4, lsl 2]
ldr s2, [x21, x3, lsl 2]
ldr s1, [x21, x2, lsl 2]
ldr s0, [x21, x1, lsl 2]
b .L41
