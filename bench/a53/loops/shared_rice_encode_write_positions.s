// csrc/format.cpp: out.put(unary | (low << (q + 1)), q + 1 + k);
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 1 element(s) per iteration
add w2, w2, 1
lsl x1, x1, x2
orr x1, x1, x16
lsl x1, x1, x3
add w3, w3, w17
orr x0, x0, x1
cmp w3, 31
bls .L1000
add x4, x4, 1
cmp w7, w4
bls .L1293
ldr w1, [x22, x4, lsl 2]
sub w2, w1, w5
add w5, w1, 1
uxtw x1, w2
lsr w2, w2, w6
cmp w2, 23
bls .L1294
add w17, w9, w2
lsl x16, x10, x2
and x1, x8, x1
cmp w17, 32
sub x16, x16, #1
bhi .L999
