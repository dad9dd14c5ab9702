package model

import (
	"fmt"
	"strings"

	"github.com/bidora/bidora/safetensors"
)

// BaseDType is how the frozen weights that are not quantised are held: the
// embeddings, the LM head and, without Options.Quant, the seven projections of
// every layer. bidora has kernels for bf16 and f32 weights (package nn).
type BaseDType string

const (
	// BaseAuto holds the weights as stored where a kernel exists: an f32
	// checkpoint stays f32 and a bf16 one bf16. An f16 checkpoint (no f16 kernel)
	// is held in bf16, the same memory: f16's 10-bit mantissa is rounded to
	// bf16's 7 bits (BaseF32 keeps f16 values exactly, at twice the memory). F64
	// weights are held in f32. A checkpoint that mixes dtypes is held in the
	// widest of its weight matrices (StoredDType).
	BaseAuto BaseDType = "auto"
	// BaseBF16 holds them in bf16: 2 bytes a weight, f32 weights rounded.
	BaseBF16 BaseDType = "bf16"
	// BaseF32 holds them in f32: 4 bytes a weight, exact for f32, f16 and bf16
	// checkpoints.
	BaseF32 BaseDType = "f32"
)

// BaseDTypes are the values ParseBaseDType accepts, in their canonical spelling.
var BaseDTypes = []string{string(BaseAuto), string(BaseBF16), string(BaseF32)}

// ParseBaseDType reads a base dtype: auto, bf16 (bfloat16) or f32 (fp32, float32),
// in any case; "" is auto.
func ParseBaseDType(s string) (BaseDType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return BaseAuto, nil
	case "bf16", "bfloat16":
		return BaseBF16, nil
	case "f32", "fp32", "float32":
		return BaseF32, nil
	}
	return "", fmt.Errorf("base dtype %q: want auto, bf16 or f32", s)
}

// Held is the dtype weights stored as stored are held in under d: d itself when it
// is bf16 or f32; for auto (or ""), f32 for F32 and F64 checkpoints and bf16 for
// everything else (BF16, F16, or "" when the stored dtype is unknown).
func (d BaseDType) Held(stored safetensors.DType) BaseDType {
	switch d {
	case BaseBF16, BaseF32:
		return d
	}
	if stored == safetensors.F32 || stored == safetensors.F64 {
		return BaseF32
	}
	return BaseBF16
}

// storedRank orders the float dtypes for StoredDType: the widest wins, and F16
// before BF16 so that a checkpoint holding any f16 matrix is reported as f16.
var storedRank = map[safetensors.DType]int{safetensors.BF16: 1, safetensors.F16: 2, safetensors.F32: 3, safetensors.F64: 4}

// StoredDType is the dtype in which src stores the weight matrices (the
// two-dimensional float tensors: embeddings, LM head and projections; norms,
// biases and the packed bytes of a bitsandbytes 4-bit checkpoint are left out),
// read from the headers alone. When they mix dtypes it is the widest (F64 > F32
// > F16 > BF16); "" when src has no float matrix.
func StoredDType(src safetensors.Source) safetensors.DType {
	var best safetensors.DType
	for _, name := range src.Names() {
		info, ok := src.Info(name)
		if !ok || len(info.Shape) != 2 {
			continue
		}
		if storedRank[info.DType] > storedRank[best] {
			best = info.DType
		}
	}
	return best
}

// CheckpointDType is StoredDType of the model directory dir (model.safetensors or
// a sharded index); only the headers are read.
func CheckpointDType(dir string) (safetensors.DType, error) {
	src, err := safetensors.OpenDir(dir)
	if err != nil {
		return "", err
	}
	defer src.Close()
	return StoredDType(src), nil
}

// baseDType resolves Options.BaseDType (with F32Weights, which means BaseF32) for
// the checkpoint src: "" and auto hold the weights as stored (Held).
func (o Options) baseDType(src safetensors.Source) (BaseDType, error) {
	d, err := ParseBaseDType(string(o.BaseDType))
	if err != nil {
		return "", fmt.Errorf("model options: %w", err)
	}
	if o.F32Weights {
		if o.BaseDType != "" && d != BaseF32 {
			return "", fmt.Errorf("model options: F32Weights conflicts with BaseDType %s", o.BaseDType)
		}
		return BaseF32, nil
	}
	if d == BaseAuto && src != nil {
		return d.Held(StoredDType(src)), nil
	}
	return d.Held(""), nil
}

// BaseDType is the dtype the frozen weights that are not quantised are held in
// (BaseBF16 or BaseF32; the embeddings always are).
func (m *Model) BaseDType() BaseDType {
	if m.Embed != nil && m.Embed.F32 != nil {
		return BaseF32
	}
	return BaseBF16
}
