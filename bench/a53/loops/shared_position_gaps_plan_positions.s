// csrc/format.cpp: gaps[i] = idx[start + i] - prev_plus_one;
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 1 element(s) per iteration
ldr w4, [x7, x2, lsl 2]
add x2, x2, 1
sub w1, w4, w26
str w1, [x13], 4
cmp w5, w1
add w26, w4, 1
csel w5, w5, w1, cs
add x12, x12, w1, uxtw
cmp w19, w2
bhi .L671
