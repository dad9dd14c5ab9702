package quant

import (
	"fmt"
	"math"
)

// NonFiniteError reports a NaN or ±Inf in a weight being quantised. Neither format can
// represent one (the scale of its block or row would be NaN or infinite), so
// quantisation refuses the weight instead of storing a block of garbage.
// QuantizeTensor (and so Load and model loading) fills in Tensor; QuantizeNF4,
// QuantizeNF4BF16 and QuantizeInt8 leave it empty.
type NonFiniteError struct {
	Tensor string // the tensor's name in the checkpoint; "" for an in-memory slice
	Kind   Kind   // the format asked for: KindNF4 or KindInt8
	// Row and Col locate the first non-finite value found in the [rows, cols] view of
	// the weight (a tensor of more than two dimensions is viewed as
	// [prod(shape[:-1]), shape[-1]]).
	Row, Col int
	// Value is NaN, +Inf or -Inf as f32 (an F64 value beyond the f32 range reads as ±Inf).
	Value float32
}

func (e *NonFiniteError) Error() string {
	what := "weight"
	if e.Tensor != "" {
		what = "tensor " + e.Tensor
	}
	return fmt.Sprintf("quantizing %s to %s: value %v at [%d, %d]; only finite weights can be quantised (NaN or ±Inf means the checkpoint is damaged or overflowed)",
		what, e.Kind, e.Value, e.Row, e.Col)
}

// firstNonFinite returns the index of the first NaN or ±Inf in v, or -1.
func firstNonFinite(v []float32) int {
	for i, x := range v {
		if !(abs32(x) <= math.MaxFloat32) {
			return i
		}
	}
	return -1
}

// nonFinite builds the error for the first non-finite value of v, which starts at flat
// index start of a matrix with cols columns; nil when v has none.
func nonFinite(kind Kind, v []float32, start, cols int) *NonFiniteError {
	i := firstNonFinite(v)
	if i < 0 {
		return nil
	}
	k := start + i
	return &NonFiniteError{Kind: kind, Row: k / cols, Col: k % cols, Value: v[i]}
}
