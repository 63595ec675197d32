// csrc/format.cpp: cost += q < kEscapeOnes ? q + 1 + k : kEscapeOnes + kEscapeRawBits;
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 4 element(s) per iteration
ldr q0, [x2], 16
ushl v0.4s, v0.4s, v4.4s
cmp x11, x2
add v3.4s, v5.4s, v0.4s
cmhs v0.4s, v6.4s, v0.4s
bsl v0.16b, v3.16b, v2.16b
add v1.4s, v1.4s, v0.4s
bne .L680
