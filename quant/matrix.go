package quant

import (
	"fmt"
	"strings"
)

// Kind names a weight storage format, as spelled by the --quantization flag.
type Kind string

// The formats.
const (
	KindNone Kind = "none" // weights stay in their stored precision (bf16/f32)
	KindNF4  Kind = "nf4"
	KindInt8 Kind = "int8"
)

// ParseKind parses "nf4", "int8" or "none" (case-insensitive). "auto" is for the caller
// to resolve (it depends on the memory budget) and is rejected here.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case KindNone, KindNF4, KindInt8:
		return k, nil
	}
	return "", fmt.Errorf("unknown quantization %q: want nf4, int8 or none", s)
}

// Matrix is a quantised frozen weight [rows, cols] (out × in). *NF4 and *Int8 implement it.
type Matrix interface {
	Shape() (rows, cols int)
	Kind() Kind
	// Bytes is the memory the weight occupies.
	Bytes() int64
	// MulNT computes y[m, rows] = x[m, cols]·Wᵀ (y += with accumulate).
	MulNT(y, x []float32, m int, accumulate bool)
	// MulNN computes dx[m, cols] = dy[m, rows]·W (dx += with accumulate).
	MulNN(dx, dy []float32, m int, accumulate bool)
	// Row writes row r as f32 into dst[:cols].
	Row(r int, dst []float32)
	// At returns element (r, c) as f32.
	At(r, c int) float32
	// DequantizeRange writes values [start, start+len(dst)) of the row-major flattening.
	DequantizeRange(dst []float32, start int)
	// Dequantize writes the whole matrix into dst[:rows·cols].
	Dequantize(dst []float32)
}

var (
	_ Matrix = (*NF4)(nil)
	_ Matrix = (*Int8)(nil)
)

// MulNT computes y[m, Rows] = x[m, Cols]·Wᵀ: for m ≤ 4 (decoding) with the fused
// GEMV, otherwise dequantising W tile by tile.
func (w *NF4) MulNT(y, x []float32, m int, accumulate bool) {
	if m <= gemvMaxRows {
		w.gemvNF4(y, x, m, accumulate)
		return
	}
	mulNT(w, y, x, m, accumulate)
}

// MulNN computes dx[m, Cols] = dy[m, Rows]·W, dequantising W tile by tile.
func (w *NF4) MulNN(dx, dy []float32, m int, accumulate bool) { mulNN(w, dx, dy, m, accumulate) }

// MulNT computes y[m, Rows] = x[m, Cols]·Wᵀ: for m ≤ 4 (decoding) with the fused
// GEMV, otherwise dequantising W tile by tile.
func (w *Int8) MulNT(y, x []float32, m int, accumulate bool) {
	if m <= gemvMaxRows {
		w.gemvInt8(y, x, m, accumulate)
		return
	}
	mulNT(w, y, x, m, accumulate)
}

// MulNN computes dx[m, Cols] = dy[m, Rows]·W, dequantising W tile by tile.
func (w *Int8) MulNN(dx, dy []float32, m int, accumulate bool) { mulNN(w, dx, dy, m, accumulate) }

// At returns element (r, c) as f32.
func (w *NF4) At(r, c int) float32 {
	var v [1]float32
	w.DequantizeRange(v[:], r*w.Cols+c)
	return v[0]
}

// At returns element (r, c) as f32.
func (w *Int8) At(r, c int) float32 { return float32(w.Data[r*w.Cols+c]) * w.Scale[r] }
