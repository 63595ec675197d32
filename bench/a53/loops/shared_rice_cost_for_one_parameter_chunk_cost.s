// csrc/format.cpp: cost += q < kEscapeOnes ? q + 1 + k : kEscapeOnes + kEscapeRawBits;
// function _ZN8adlcodec6encodeEPKfPfmPKmiRKNS_13EncodeOptionsE; 4 element(s) per iteration
ldr q0, [x0], 16
movi v6.4s, 0x17
ushl v0.4s, v0.4s, v4.4s
cmp x4, x0
add v3.4s, v5.4s, v0.4s
cmhs v0.4s, v6.4s, v0.4s
bsl v0.16b, v3.16b, v2.16b
add v1.4s, v1.4s, v0.4s
bne .L981
