// csrc/format.cpp: for (unsigned j = 0; j < 8; ++j) out[idx[next + j]] = v[j];
// function _ZN8adlcodec12_GLOBAL__N_111write_denseILi2EEEvPKjPKhmfPfmb; 8 element(s) per iteration
ldp w4, w3, [x0]
add x2, x1, 8
ldp w9, w8, [x0, 8]
add x16, x16, 16
ldr w5, [x0, 16]
cmp x2, x24
str s7, [x19, x4, lsl 2]
add x0, x0, 32
ldr w4, [x0, -12]
str s6, [x19, x3, lsl 2]
ldr w3, [x0, -8]
str s5, [x19, x9, lsl 2]
str s4, [x19, x8, lsl 2]
str s3, [x19, x5, lsl 2]
str s2, [x19, x4, lsl 2]
str s1, [x19, x3, lsl 2]
str s0, [x19, x17, lsl 2]
bhi .L662
mov x1, x2
ldr w17, [x0, 28]
sub x20, x1, #8
cmp x17, x25
bcs .L649
lsr x2, x16, 3
add x3, x2, 8
cmp x27, x3
bcc .L667
ldr x2, [x23, x2]
and w3, w16, 7
lsr x2, x2, x3
and x11, x2, 3
ubfx x10, x2, 2, 2
ubfx x9, x2, 4, 2
ubfx x8, x2, 6, 2
ubfx x5, x2, 8, 2
ubfx x4, x2, 10, 2
ubfx x3, x2, 12, 2
ubfx x2, x2, 14, 2
add x11, x11, 8
add x10, x10, 8
add x9, x9, 8
add x8, x8, 8
add x5, x5, 8
add x4, x4, 8
add x3, x3, 8
add x2, x2, 8
ldr s7, [x21, x11, lsl 2]
ldr s6, [x21, x10, lsl 2]
ldr s5, [x21, x9, lsl 2]
ldr s4, [x21, x8, lsl 2]
ldr s3, [x21, x5, lsl 2]
ldr s2, [x21, x4, lsl 2]
ldr s1, [x21, x3, lsl 2]
ldr s0, [x21, x2, lsl 2]
b .L653
