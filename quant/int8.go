package quant

import (
	"fmt"
	"math"

	"github.com/bidora/bidora/kernels"
)

// Int8 is a [Rows, Cols] matrix with one f32 scale per row: value (r, c) is
// Data[r·Cols+c] · Scale[r], with Scale[r] = max|row r| / 127 and
// Data = round(W/Scale) rounded half to even (as torch.round), in [-127, 127].
// An all-zero row has scale 0 and codes 0.
//
// (bitsandbytes' LLM.int8 stores the row absmax instead and codes round(W·(127/absmax));
// the two agree except where the two roundings of a value land on either side of a half.)
type Int8 struct {
	Rows, Cols int
	Data       []int8
	Scale      []float32
}

// Shape returns (Rows, Cols).
func (w *Int8) Shape() (rows, cols int) { return w.Rows, w.Cols }

// Kind returns KindInt8.
func (w *Int8) Kind() Kind { return KindInt8 }

// Bytes is the memory the weight occupies.
func (w *Int8) Bytes() int64 { return int64(len(w.Data)) + 4*int64(len(w.Scale)) }

// Validate checks the sizes.
func (w *Int8) Validate() error {
	if w.Rows < 0 || w.Cols < 0 {
		return fmt.Errorf("int8: negative shape [%d, %d]", w.Rows, w.Cols)
	}
	if len(w.Data) != w.Rows*w.Cols || len(w.Scale) != w.Rows {
		return fmt.Errorf("int8: %d codes and %d scales for [%d, %d]", len(w.Data), len(w.Scale), w.Rows, w.Cols)
	}
	return nil
}

// QuantizeInt8 quantises a row-major [rows, cols] f32 matrix; a NaN or ±Inf is refused
// with a *NonFiniteError.
func QuantizeInt8(w []float32, rows, cols int) (*Int8, error) {
	if len(w) != rows*cols {
		return nil, fmt.Errorf("int8: %d values for shape [%d, %d]", len(w), rows, cols)
	}
	return quantizeInt8(rows, cols, func(dst []float32, start int) { copy(dst, w[start:]) })
}

// quantizeInt8 quantises rows read one at a time as f32 (read(dst, start) fills the
// values from flat index start), spread over the kernel threads.
func quantizeInt8(rows, cols int, read func(dst []float32, start int)) (*Int8, error) {
	if rows < 0 || cols < 0 {
		return nil, fmt.Errorf("int8: negative shape [%d, %d]", rows, cols)
	}
	w := &Int8{Rows: rows, Cols: cols, Data: make([]int8, rows*cols), Scale: make([]float32, rows)}
	errs := make([]error, rows)
	kernels.Parallel(rows, 16, func(lo, hi int) {
		buf := make([]float32, cols)
		for r := lo; r < hi; r++ {
			read(buf, r*cols)
			var err error
			if w.Scale[r], err = quantizeInt8Row(w.Data[r*cols:(r+1)*cols], buf); err != nil {
				if nf := nonFinite(KindInt8, buf, r*cols, cols); nf != nil {
					errs[r] = nf
				} else {
					errs[r] = fmt.Errorf("int8: row %d: %w", r, err)
				}
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return w, nil
}

func quantizeInt8Row(q []int8, v []float32) (float32, error) {
	var am float32
	for _, x := range v {
		am = max(am, abs32(x))
	}
	if !(am <= math.MaxFloat32) {
		return 0, fmt.Errorf("non-finite value (absmax %v)", am)
	}
	scale := am / 127
	if scale == 0 {
		clear(q)
		return 0, nil
	}
	for i, x := range v {
		r := math.RoundToEven(float64(x / scale))
		q[i] = int8(max(-127, min(127, r)))
	}
	return scale, nil
}

// DequantizeRange writes values [start, start+len(dst)) of the row-major flattening.
func (w *Int8) DequantizeRange(dst []float32, start int) {
	for len(dst) > 0 {
		r := start / w.Cols
		n := min(len(dst), (r+1)*w.Cols-start)
		decodeInt8(dst[:n], w.Data[start:start+n], w.Scale[r])
		dst, start = dst[n:], start+n
	}
}

// Dequantize writes the whole matrix as f32 into dst[:Rows·Cols].
func (w *Int8) Dequantize(dst []float32) {
	dst = dst[:w.Rows*w.Cols]
	kernels.Parallel(w.Rows, 64, func(lo, hi int) {
		w.DequantizeRange(dst[lo*w.Cols:hi*w.Cols], lo*w.Cols)
	})
}

// Row writes row r as f32 into dst[:Cols].
func (w *Int8) Row(r int, dst []float32) {
	decodeInt8(dst[:w.Cols], w.Data[r*w.Cols:(r+1)*w.Cols], w.Scale[r])
}

// decodeInt8Go is the plain-Go twin of the assembly decoder.
func decodeInt8Go(dst []float32, src []int8, scale float32) {
	dst = dst[:len(src)]
	for i, q := range src {
		dst[i] = float32(q) * scale
	}
}
