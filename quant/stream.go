package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/bidora/bidora/safetensors"
)

// QuantizeTensor quantises the named float tensor (F32, F16, BF16 or F64) of src to
// kind (KindNF4 or KindInt8) while reading it: the raw bytes are a view of the mapped
// file and are converted to f32 a chunk at a time (16 Ki values per worker for NF4, one
// row for INT8), so no full-precision copy of the weight is ever made. A tensor of more
// than two dimensions is treated as [prod(shape[:-1]), shape[-1]]. A NaN or ±Inf is
// refused with a *NonFiniteError naming the tensor.
func QuantizeTensor(src safetensors.Source, name string, kind Kind, opt NF4Options) (Matrix, error) {
	info, ok := src.Info(name)
	if !ok {
		return nil, fmt.Errorf("quantizing %s: no such tensor", name)
	}
	rows, cols, err := matrixShape(info.Shape)
	if err != nil {
		return nil, fmt.Errorf("quantizing %s: %w", name, err)
	}
	raw, err := src.Bytes(name)
	if err != nil {
		return nil, fmt.Errorf("quantizing %s: %w", name, err)
	}
	read, dtype, err := rawReader(raw, info.DType, rows*cols)
	if err != nil {
		return nil, fmt.Errorf("quantizing %s: %w", name, err)
	}
	var m Matrix
	switch kind {
	case KindNF4:
		m, err = quantizeNF4(rows, cols, dtype, opt, read)
	case KindInt8:
		m, err = quantizeInt8(rows, cols, read)
	default:
		return nil, fmt.Errorf("quantizing %s: kind %q is not a quantised format", name, kind)
	}
	var nf *NonFiniteError
	if errors.As(err, &nf) {
		nf.Tensor = name // its message names the tensor
		return nil, nf
	}
	if err != nil {
		return nil, fmt.Errorf("quantizing %s: %w", name, err)
	}
	return m, nil
}

// Load returns the named weight of src as kind: a weight saved by bitsandbytes in NF4
// (it has a quant_state entry, see IsBnb4bit) is loaded as it is, without
// re-quantising; any other float weight is quantised while reading (QuantizeTensor).
func Load(src safetensors.Source, name string, kind Kind, opt NF4Options) (Matrix, error) {
	if IsBnb4bit(src, name) {
		if kind != KindNF4 {
			return nil, fmt.Errorf("loading %s: the checkpoint holds it in bitsandbytes NF4, which cannot be used as %s", name, kind)
		}
		return LoadBnb4bit(src, name)
	}
	return QuantizeTensor(src, name, kind, opt)
}

func matrixShape(shape []int) (rows, cols int, err error) {
	if len(shape) == 0 {
		return 0, 0, fmt.Errorf("scalar tensor, want a matrix")
	}
	rows = 1
	for _, d := range shape[:len(shape)-1] {
		rows *= d
	}
	return rows, shape[len(shape)-1], nil
}

// rawReader returns a function that converts little-endian elements [start,
// start+len(dst)) of raw to f32, and the dtype name bitsandbytes records.
func rawReader(raw []byte, dt safetensors.DType, n int) (func(dst []float32, start int), string, error) {
	if size := dt.Size(); size == 0 || len(raw) != n*size {
		return nil, "", fmt.Errorf("%d bytes of %s for %d values", len(raw), dt, n)
	}
	le := binary.LittleEndian
	switch dt {
	case safetensors.BF16:
		return func(dst []float32, start int) {
			src := raw[2*start : 2*(start+len(dst))]
			for i := range dst {
				dst[i] = math.Float32frombits(uint32(le.Uint16(src[2*i:])) << 16)
			}
		}, "bfloat16", nil
	case safetensors.F16:
		return func(dst []float32, start int) {
			src := raw[2*start : 2*(start+len(dst))]
			for i := range dst {
				dst[i] = safetensors.F16ToF32(le.Uint16(src[2*i:]))
			}
		}, "float16", nil
	case safetensors.F32:
		return func(dst []float32, start int) {
			src := raw[4*start : 4*(start+len(dst))]
			for i := range dst {
				dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
			}
		}, "float32", nil
	case safetensors.F64:
		return func(dst []float32, start int) {
			src := raw[8*start : 8*(start+len(dst))]
			for i := range dst {
				dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
			}
		}, "float32", nil
	}
	return nil, "", fmt.Errorf("dtype %s, want F32, F16, BF16 or F64", dt)
}
