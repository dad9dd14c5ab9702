package nn

import (
	"fmt"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/quant"
)

// Weight is a frozen [Rows, Cols] matrix (out × in for a linear layer) held in one of
// three forms: quantised (Q non-nil: NF4 or INT8, see package quant), bf16 (BF16
// non-nil) or f32 (F32 non-nil), checked in that order. The data may alias a
// memory-mapped file. A quantised weight is never expanded to full precision: its
// GEMMs dequantise tile by tile and Row decodes one row.
//
// With BF16Compute set, the products (MulNT, MulNN) round the activation operand to
// bf16 and accumulate bf16 pair products in f32 (package kernels' bf16-compute GEMMs,
// as bf16 autocast does); a quantised weight dequantises its tiles into them
// (quant.BF16Computer). Row and At are unaffected.
type Weight struct {
	Rows, Cols  int
	F32         []float32
	BF16        []uint16
	Q           quant.Matrix
	BF16Compute bool
}

// Exact returns a view of w whose products are always computed in f32 (BF16Compute
// off), for gradient terms that must stay f32.
func (w *Weight) Exact() *Weight {
	if !w.BF16Compute {
		return w
	}
	v := *w
	v.BF16Compute = false
	return &v
}

// NewWeightF32 wraps f32 data of shape [rows, cols].
func NewWeightF32(rows, cols int, data []float32) (*Weight, error) {
	if len(data) != rows*cols {
		return nil, fmt.Errorf("weight data has %d values, want %d×%d = %d", len(data), rows, cols, rows*cols)
	}
	return &Weight{Rows: rows, Cols: cols, F32: data}, nil
}

// NewWeightBF16 wraps bf16 data of shape [rows, cols].
func NewWeightBF16(rows, cols int, data []uint16) (*Weight, error) {
	if len(data) != rows*cols {
		return nil, fmt.Errorf("weight data has %d values, want %d×%d = %d", len(data), rows, cols, rows*cols)
	}
	return &Weight{Rows: rows, Cols: cols, BF16: data}, nil
}

// NewWeightQuant wraps a quantised matrix (its shape is the weight's).
func NewWeightQuant(q quant.Matrix) *Weight {
	rows, cols := q.Shape()
	return &Weight{Rows: rows, Cols: cols, Q: q}
}

// Format names how the weight is held: "nf4", "int8", "bf16" or "f32".
func (w *Weight) Format() string {
	switch {
	case w.Q != nil:
		return string(w.Q.Kind())
	case w.BF16 != nil:
		return "bf16"
	}
	return "f32"
}

// Bytes is the memory the weight occupies.
func (w *Weight) Bytes() int64 {
	switch {
	case w.Q != nil:
		return w.Q.Bytes()
	case w.BF16 != nil:
		return int64(len(w.BF16)) * 2
	}
	return int64(len(w.F32)) * 4
}

// MulNT computes y[m, Rows] = x[m, Cols]·Wᵀ (y += with accumulate).
func (w *Weight) MulNT(y, x []float32, m int, accumulate bool) {
	switch {
	case w.Q != nil:
		if bq, ok := w.Q.(quant.BF16Computer); ok && w.BF16Compute {
			bq.MulNTBF16(y, x, m, accumulate)
			return
		}
		w.Q.MulNT(y, x, m, accumulate)
	case w.BF16Compute && w.BF16 != nil:
		kernels.MatMulNTBF16Compute(y, x, w.BF16, m, w.Rows, w.Cols, accumulate)
	case w.BF16Compute:
		kernels.MatMulNTF32Compute16(y, x, w.F32, m, w.Rows, w.Cols, accumulate)
	case w.BF16 != nil:
		kernels.MatMulNTBF16(y, x, w.BF16, m, w.Rows, w.Cols, accumulate)
	default:
		kernels.MatMulNT(y, x, w.F32, m, w.Rows, w.Cols, accumulate)
	}
}

// MulNN computes dx[m, Cols] = dy[m, Rows]·W (dx += with accumulate).
func (w *Weight) MulNN(dx, dy []float32, m int, accumulate bool) {
	switch {
	case w.Q != nil:
		if bq, ok := w.Q.(quant.BF16Computer); ok && w.BF16Compute {
			bq.MulNNBF16(dx, dy, m, accumulate)
			return
		}
		w.Q.MulNN(dx, dy, m, accumulate)
	case w.BF16Compute && w.BF16 != nil:
		kernels.MatMulNNBF16Compute(dx, dy, w.BF16, m, w.Rows, w.Cols, accumulate)
	case w.BF16Compute:
		kernels.MatMulNNF32Compute16(dx, dy, w.F32, m, w.Rows, w.Cols, accumulate)
	case w.BF16 != nil:
		kernels.MatMulNNBF16(dx, dy, w.BF16, m, w.Rows, w.Cols, accumulate)
	default:
		kernels.MatMulNN(dx, dy, w.F32, m, w.Rows, w.Cols, accumulate)
	}
}

// Row copies row r of W into dst[:Cols] as f32.
func (w *Weight) Row(r int, dst []float32) {
	dst = dst[:w.Cols]
	switch {
	case w.Q != nil:
		w.Q.Row(r, dst)
	case w.BF16 != nil:
		src := w.BF16[r*w.Cols : (r+1)*w.Cols]
		for i, b := range src {
			dst[i] = kernels.BF16ToF32(b)
		}
	default:
		copy(dst, w.F32[r*w.Cols:(r+1)*w.Cols])
	}
}

// At returns element (r, c) as f32.
func (w *Weight) At(r, c int) float32 {
	switch {
	case w.Q != nil:
		return w.Q.At(r, c)
	case w.BF16 != nil:
		return kernels.BF16ToF32(w.BF16[r*w.Cols+c])
	}
	return w.F32[r*w.Cols+c]
}
