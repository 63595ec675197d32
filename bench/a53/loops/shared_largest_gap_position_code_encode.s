// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): largest = gaps[i] > largest ? gaps[i] : largest;
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 4 element(s) per iteration
ldr q2, [x3], 16
umax v0.4s, v0.4s, v2.4s
cmp x5, x3
bne .L169
