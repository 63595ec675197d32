// csrc/kernel_neon.cpp: i += kBlock) {  // loop 2, steady state
// function _ZN8adlcodec12_GLOBAL__N_112analyze_binsILb0EEEPjPKfS4_PfmjjS2_S5_Pb; 17 element(s) per iteration
add x7, x7, 16
add x2, x2, 64
cmp x7, x9
add x5, x5, 64
bne .L43
#APP
facgt v4.4s, v5.4s, v4.4s
#NO_APP
#APP
facgt v1.4s, v5.4s, v1.4s
#NO_APP
#APP
facgt v0.4s, v5.4s, v0.4s
#NO_APP
#APP
facgt v6.4s, v5.4s, v6.4s
#NO_APP
uzp1 v0.8h, v0.8h, v4.8h
uzp1 v6.8h, v6.8h, v1.8h
ldp q18, q17, [x2, 32]
ldp q7, q1, [x5, 32]
uzp1 v0.16b, v0.16b, v6.16b
ldp q20, q19, [x2]
ldp q16, q4, [x5]
fadd v6.4s, v7.4s, v18.4s
shrn v7.8b, v0.8h, 4
fadd v16.4s, v16.4s, v20.4s
fadd v4.4s, v4.4s, v19.4s
fadd v1.4s, v1.4s, v17.4s
fmov x1, d7
fadd v0.4s, v16.4s, v20.4s
fadd v4.4s, v4.4s, v19.4s
fadd v6.4s, v6.4s, v18.4s
fadd v1.4s, v1.4s, v17.4s
cmn x1, #1
bne .L91
mvn x1, x1
add w17, w19, w7
ands x1, x1, -8608480567731124088
beq .L41
rbit x6, x1
sub x27, x1, #1
clz x6, x6
add x26, x7, x6, lsr 2
lsr w6, w6, 2
add w6, w17, w6
ldr s7, [x12, x26, lsl 2]
ldr s16, [x10, x26, lsl 2]
str w6, [x0]
fadd s16, s7, s16
fadd s7, s7, s16
str s16, [x3]
fabs s7, s7
fcmpe s7, s3
cset w6, ls
fcmp s16, #0.0
and w4, w4, w6
fccmpe s7, s2, 1, ne
cset x6, ge
ands x1, x1, x27
lsl x6, x6, 2
add x0, x0, x6
add x3, x3, x6
bne .L42
b .L41
