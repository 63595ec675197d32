// A lower bound for the encode's pass over memory on the llvm-mca Cortex-A53 model, written by hand:
// one bin of 48 elements held entirely in registers (G in v0-v11, g in v12-v23), read once, G stored
// once, with nothing selected and no bin tail. Per element that is the least an encode must do: load r
// and g, G = r + g, |G| and the bin maximum, H = G + g, |H| < max, store G. No real kernel can keep a
// bin of 50 (26 of 32 vector registers plus the maximum and masks) or 500 in registers, and the
// in-place checked encode may not store before the whole tensor is known to be finite. mca.py
// reports this sequence's cycles per element next to the kernel's loops.
ldp q0, q1, [x1, 0]
ldp q12, q13, [x2, 0]
ldp q2, q3, [x1, 32]
ldp q14, q15, [x2, 32]
ldp q4, q5, [x1, 64]
ldp q16, q17, [x2, 64]
ldp q6, q7, [x1, 96]
ldp q18, q19, [x2, 96]
ldp q8, q9, [x1, 128]
ldp q20, q21, [x2, 128]
ldp q10, q11, [x1, 160]
ldp q22, q23, [x2, 160]
fadd v0.4s, v0.4s, v12.4s
fadd v1.4s, v1.4s, v13.4s
fadd v2.4s, v2.4s, v14.4s
fadd v3.4s, v3.4s, v15.4s
fadd v4.4s, v4.4s, v16.4s
fadd v5.4s, v5.4s, v17.4s
fadd v6.4s, v6.4s, v18.4s
fadd v7.4s, v7.4s, v19.4s
fadd v8.4s, v8.4s, v20.4s
fadd v9.4s, v9.4s, v21.4s
fadd v10.4s, v10.4s, v22.4s
fadd v11.4s, v11.4s, v23.4s
fabs v24.4s, v0.4s
fabs v25.4s, v1.4s
fabs v26.4s, v2.4s
fabs v27.4s, v3.4s
fmaxnm v28.4s, v28.4s, v24.4s
fmaxnm v29.4s, v29.4s, v25.4s
fmaxnm v30.4s, v30.4s, v26.4s
fmaxnm v31.4s, v31.4s, v27.4s
fabs v24.4s, v4.4s
fabs v25.4s, v5.4s
fabs v26.4s, v6.4s
fabs v27.4s, v7.4s
fmaxnm v28.4s, v28.4s, v24.4s
fmaxnm v29.4s, v29.4s, v25.4s
fmaxnm v30.4s, v30.4s, v26.4s
fmaxnm v31.4s, v31.4s, v27.4s
fabs v24.4s, v8.4s
fabs v25.4s, v9.4s
fabs v26.4s, v10.4s
fabs v27.4s, v11.4s
fmaxnm v28.4s, v28.4s, v24.4s
fmaxnm v29.4s, v29.4s, v25.4s
fmaxnm v30.4s, v30.4s, v26.4s
fmaxnm v31.4s, v31.4s, v27.4s
fmaxnm v28.4s, v28.4s, v29.4s
fmaxnm v30.4s, v30.4s, v31.4s
fmaxnm v28.4s, v28.4s, v30.4s
fmaxnmv s28, v28.4s
dup v28.4s, v28.s[0]
fadd v12.4s, v0.4s, v12.4s
fadd v13.4s, v1.4s, v13.4s
fadd v14.4s, v2.4s, v14.4s
fadd v15.4s, v3.4s, v15.4s
fadd v16.4s, v4.4s, v16.4s
fadd v17.4s, v5.4s, v17.4s
fadd v18.4s, v6.4s, v18.4s
fadd v19.4s, v7.4s, v19.4s
fadd v20.4s, v8.4s, v20.4s
fadd v21.4s, v9.4s, v21.4s
fadd v22.4s, v10.4s, v22.4s
fadd v23.4s, v11.4s, v23.4s
facgt v12.4s, v28.4s, v12.4s
facgt v13.4s, v28.4s, v13.4s
facgt v14.4s, v28.4s, v14.4s
facgt v15.4s, v28.4s, v15.4s
facgt v16.4s, v28.4s, v16.4s
facgt v17.4s, v28.4s, v17.4s
facgt v18.4s, v28.4s, v18.4s
facgt v19.4s, v28.4s, v19.4s
facgt v20.4s, v28.4s, v20.4s
facgt v21.4s, v28.4s, v21.4s
facgt v22.4s, v28.4s, v22.4s
facgt v23.4s, v28.4s, v23.4s
and v24.16b, v12.16b, v13.16b
and v25.16b, v16.16b, v17.16b
and v26.16b, v20.16b, v21.16b
and v27.16b, v14.16b, v15.16b
and v28.16b, v18.16b, v19.16b
and v29.16b, v22.16b, v23.16b
stp q0, q1, [x3, 0]
stp q2, q3, [x3, 32]
stp q4, q5, [x3, 64]
stp q6, q7, [x3, 96]
stp q8, q9, [x3, 128]
stp q10, q11, [x3, 160]
and v24.16b, v24.16b, v27.16b
and v25.16b, v25.16b, v28.16b
and v26.16b, v26.16b, v29.16b
xtn v24.4h, v24.4s
xtn v25.4h, v25.4s
xtn v26.4h, v26.4s
fmov x7, d24
fmov x8, d25
fmov x9, d26
and x7, x7, x8
and x7, x7, x9
add x1, x1, 192
add x2, x2, 192
add x3, x3, 192
cmn x7, #1
b.ne .Lsel
subs x4, x4, 1
b.ne .Lloop
