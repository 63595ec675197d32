// csrc/format.cpp: gaps[i] = idx[start + i] - prev_plus_one;
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 1 element(s) per iteration
ldr w7, [x25, x1, lsl 2]
add x1, x1, 1
sub w0, w7, w24
str w0, [x5], 4
cmp w2, w0
add w24, w7, 1
csel w2, w2, w0, cs
add x4, x4, w0, uxtw
cmp w6, w1
bhi .L972
