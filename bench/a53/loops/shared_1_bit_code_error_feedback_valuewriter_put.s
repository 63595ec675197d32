// csrc/format.cpp: stream_.put(code, unsigned(bits_));
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 1 element(s) per iteration
lsl x0, x0, x23
add w23, w23, w24
orr x25, x25, x0
cmp w23, 31
bls .L1062
fmov s2, w7
orr v0.8b, v2.8b, v0.8b
fsub s1, s1, s0
add x21, x21, 1
cmp x19, x21
str s1, [x20, x6, lsl 2]
beq .L1260
ldr w6, [x22, x21, lsl 2]
cmp x6, x26
bcs .L1260
ldr s1, [x27, x21, lsl 2]
cmp w24, 16
fmov w0, s1
bne .L1044
cmp w24, 32
beq .L1296
and w7, w0, -2147483648
fmov s0, s8
cmp w24, 1
lsr w0, w0, 31
ble .L1058
