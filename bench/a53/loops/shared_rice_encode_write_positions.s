// csrc/format.cpp: out.put(unary | (low << (q + 1)), q + 1 + k);
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 1 element(s) per iteration
add w6, w6, w21
add w0, w0, 1
lsl x0, x1, x0
lsr w1, w6, 3
orr x0, x0, x4
uxtw x4, w1
lsl w1, w1, 3
lsl x0, x0, x21
orr x0, x0, x20
and w21, w6, 7
str x0, [x23]
add x23, x23, x4
lsr x20, x0, x1
add w2, w2, 1
add x25, x25, 4
cmp w19, w2
bls .L941
ldr w0, [x25]
uxtw x1, w0
lsr w0, w0, w24
cmp w0, 23
bls .L942
add w6, w13, w0
lsl x4, x8, x0
and x1, x5, x1
cmp w6, 32
sub x4, x4, #1
bhi .L694
