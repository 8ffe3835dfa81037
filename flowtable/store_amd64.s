//go:build !race

#include "textflag.h"

// func storeRel32(p *uint32, v uint32)
TEXT ·storeRel32(SB), NOSPLIT, $0-12
	MOVQ p+0(FP), AX
	MOVL v+8(FP), BX
	MOVL BX, (AX)
	RET

// func storeRel64(p *uint64, v uint64)
TEXT ·storeRel64(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), AX
	MOVQ v+8(FP), BX
	MOVQ BX, (AX)
	RET

// func publish(seq *uint32, idx *uint32, tag *uint32, i uint32, tg uint32)
TEXT ·publish(SB), NOSPLIT, $0-32
	MOVQ seq+0(FP), AX
	MOVQ idx+8(FP), BX
	MOVQ tag+16(FP), CX
	MOVL i+24(FP), DX
	MOVL tg+28(FP), SI
	MOVL (AX), DI
	INCL DI
	MOVL DI, (AX)
	MOVL DX, (BX)
	MOVL SI, (CX)
	INCL DI
	MOVL DI, (AX)
	RET

// func unpublish(seq *uint32, tag *uint32)
TEXT ·unpublish(SB), NOSPLIT, $0-16
	MOVQ seq+0(FP), AX
	MOVQ tag+8(FP), CX
	MOVL (AX), DI
	INCL DI
	MOVL DI, (AX)
	MOVL $0, (CX)
	INCL DI
	MOVL DI, (AX)
	RET

// func store4(w *[4]uint64, w0, w1, w2, w3 uint64)
TEXT ·store4(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), AX
	MOVQ w0+8(FP), BX
	MOVQ w1+16(FP), CX
	MOVQ w2+24(FP), DX
	MOVQ w3+32(FP), SI
	MOVQ BX, 0(AX)
	MOVQ CX, 8(AX)
	MOVQ DX, 16(AX)
	MOVQ SI, 24(AX)
	RET
