// csrc/position_code_impl.h (compiled in csrc/kernel_neon.cpp): largest = gaps[i] > largest ? gaps[i] : largest;
// function _ZN8adlcodec12_GLOBAL__N_113position_code6encodeEPKjmPhPNS_14PositionWriterE; 4 element(s) per iteration
ldr q1, [x4], 16
umax v0.4s, v0.4s, v1.4s
cmp x4, x11
bne .L98
