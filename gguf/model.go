package gguf

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/bidora/bidora/internal/atomicfile"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/safetensors"
)

// ModelOptions controls WriteModel.
type ModelOptions struct {
	// Type of the matrices: F32 (the default), F16, BF16 or Q8_0. Vectors
	// (norms, biases, rope factors) are always F32, as llama.cpp's converter
	// writes them; a Q8_0 matrix whose rows are not a multiple of 32 long is
	// written as F16.
	Type TensorType
	// Mix, when not empty, picks each matrix's type by a llama.cpp recipe
	// instead of Type: MixQ4_K_M is llama-quantize's Q4_K_M (see
	// TensorTypeQ4_K_M).
	Mix Mix
	// Name is written as general.name when not empty.
	Name string
	// Alignment of the tensor data (0: DefaultAlignment).
	Alignment uint32
	// Progress, when set, is called after each tensor is written.
	Progress func(done, total int)
	// BlockValues is about how many values are converted at a time (whole
	// rows; 0: about a million).
	BlockValues int
}

// SourceTensor is a tensor of the HF checkpoint: its name and row-major shape.
type SourceTensor struct {
	Name  string
	Shape []int
}

// ModelResult describes a written model.
type ModelResult struct {
	Architecture string `json:"architecture"`
	Tensors      int    `json:"tensors"`
	Bytes        int64  `json:"bytes"` // tensor data
	VocabSize    int    `json:"vocab_size"`
	Tokenizer    string `json:"tokenizer"` // tokenizer.ggml.model
	Pre          string `json:"pre"`       // tokenizer.ggml.pre
}

// modelFileTypes are general.file_type values (llama_ftype).
var modelFileTypes = map[TensorType]uint32{F32: 0, F16: 1, Q8_0: 7, BF16: 32}

// Mix names a llama.cpp quantisation recipe: a type per tensor.
type Mix string

// MixQ4_K_M is llama.cpp's Q4_K_M (general.file_type 15).
const MixQ4_K_M Mix = "Q4_K_M"

// fileTypeQ4_K_M is LLAMA_FTYPE_MOSTLY_Q4_K_M.
const fileTypeQ4_K_M = 15

// useMoreBits is llama.cpp's choice of the layers that Q4_K_M keeps in Q6_K
// (attn_v and ffn_down): the first and last eighth, and every third layer
// between them.
func useMoreBits(layer, layers int) bool {
	return layer < layers/8 || layer >= 7*layers/8 || (layer-layers/8)%3 == 2
}

// TensorTypeQ4_K_M is the type llama-quantize's Q4_K_M recipe gives the
// matrix named name (llama.cpp's name, e.g. "blk.3.attn_v.weight") with
// rows of cols values in a model of layers blocks, whose embedding is the
// output matrix when tied: Q6_K for the output matrix, and for attn_v and
// ffn_down in the layers useMoreBits picks; Q4_K for the rest. Rows whose
// length is not a multiple of 256 fall back as llama.cpp does: the output
// matrix to Q8_0, other Q6_K to Q8_0, Q4_K to Q5_0, and any of them to F16
// when the rows are not a multiple of 32 long either (where llama.cpp
// itself refuses an output matrix).
func TensorTypeQ4_K_M(name string, cols, layers int, tied bool) TensorType {
	t := Q4_K
	layer := -1
	if rest, ok := strings.CutPrefix(name, "blk."); ok {
		ls, _, _ := strings.Cut(rest, ".")
		layer, _ = strconv.Atoi(ls)
	}
	switch {
	case name == "output.weight" || (tied && name == "token_embd.weight"):
		t = Q6_K
		if cols%QK_K != 0 {
			t = Q8_0
		}
	case (strings.Contains(name, ".attn_v.weight") || strings.Contains(name, ".ffn_down.")) && layer >= 0 && useMoreBits(layer, layers):
		t = Q6_K
	}
	if cols%QK_K != 0 {
		switch t {
		case Q4_K:
			t = Q5_0
		case Q6_K:
			t = Q8_0
		}
	}
	if cols%32 != 0 {
		t = F16
	}
	return t
}

// ModelTensorName maps an HF decoder tensor name to llama.cpp's
// ("model.layers.3.self_attn.q_proj.weight" → "blk.3.attn_q.weight"). skip
// reports tensors llama.cpp does not load (rotary inv_freq buffers).
func ModelTensorName(hf string) (name string, skip bool, err error) {
	switch hf {
	case "model.embed_tokens.weight":
		return "token_embd.weight", false, nil
	case "model.norm.weight":
		return "output_norm.weight", false, nil
	case "lm_head.weight":
		return "output.weight", false, nil
	}
	if strings.HasSuffix(hf, ".rotary_emb.inv_freq") {
		return "", true, nil
	}
	rest, ok := strings.CutPrefix(hf, "model.layers.")
	if ok {
		ls, part, _ := strings.Cut(rest, ".")
		layer, lerr := strconv.Atoi(ls)
		mod, suffix, _ := strings.Cut(part, ".")
		if lerr == nil && layer >= 0 && ls == strconv.Itoa(layer) {
			switch mod {
			case "input_layernorm":
				return "blk." + ls + ".attn_norm." + suffix, false, nil
			case "post_attention_layernorm":
				return "blk." + ls + ".ffn_norm." + suffix, false, nil
			case "self_attn", "mlp":
				proj, kind, _ := strings.Cut(suffix, ".")
				if n, ok := tensorNames[proj]; ok && (kind == "weight" || kind == "bias") {
					return "blk." + ls + "." + n + "." + kind, false, nil
				}
			}
		}
	}
	return "", false, fmt.Errorf("tensor %q has no llama.cpp name", hf)
}

// ModelKVs is the metadata of a whole-model GGUF for config cfg and
// tokenizer v (see WriteModel).
func ModelKVs(cfg *modelcfg.Config, v *Vocab, opts ModelOptions) ([]KV, error) {
	arch, err := Architecture(cfg.ModelType)
	if err != nil {
		return nil, err
	}
	ft, ok := modelFileTypes[opts.Type]
	switch {
	case opts.Mix == MixQ4_K_M:
		ft, ok = fileTypeQ4_K_M, true
	case opts.Mix != "":
		return nil, fmt.Errorf("gguf: quantisation mix %q not supported; want Q4_K_M", opts.Mix)
	}
	if !ok {
		return nil, fmt.Errorf("gguf: tensor type %s not supported; want F32, F16, BF16 or Q8_0", opts.Type)
	}
	if opts.Alignment == 0 {
		opts.Alignment = DefaultAlignment
	}
	headDim := cfg.HeadDim
	if headDim == 0 {
		headDim = cfg.HiddenSize / cfg.NumAttentionHeads
	}
	kvs := []KV{{KeyArchitecture, arch}, {KeyType, "model"}}
	if opts.Name != "" {
		kvs = append(kvs, KV{KeyName, opts.Name})
	}
	a := func(k string, val any) { kvs = append(kvs, KV{arch + "." + k, val}) }
	a("block_count", uint32(cfg.NumHiddenLayers))
	a("context_length", uint32(cfg.MaxPositionEmbeddings))
	a("embedding_length", uint32(cfg.HiddenSize))
	a("feed_forward_length", uint32(cfg.IntermediateSize))
	a("attention.head_count", uint32(cfg.NumAttentionHeads))
	a("attention.head_count_kv", uint32(cfg.NumKeyValueHeads))
	a("attention.key_length", uint32(headDim))
	a("attention.value_length", uint32(headDim))
	a("attention.layer_norm_rms_epsilon", float32(cfg.RMSNormEps))
	a("rope.freq_base", float32(cfg.RopeTheta))
	a("rope.dimension_count", uint32(headDim))
	a("vocab_size", uint32(len(v.Tokens)))
	if rs := cfg.RopeScaling; rs != nil {
		switch rs.Type {
		case "", "default":
		case "linear":
			a("rope.scaling.type", "linear")
			a("rope.scaling.factor", float32(rs.Factor))
		case "llama3":
			// Carried by the rope_freqs.weight tensor, as llama.cpp's converter does.
			if arch != "llama" {
				return nil, fmt.Errorf("gguf: rope_scaling llama3 on a %s model is not supported", cfg.ModelType)
			}
		default:
			return nil, fmt.Errorf("gguf: rope_scaling type %q is not supported", rs.Type)
		}
	}
	// llama.cpp's llama and qwen2 graphs attend to the whole context; a
	// window is recorded for Mistral (every layer slides) so that a runtime
	// that honours it can, and is otherwise only reached by prompts longer
	// than the window.
	if cfg.ModelType == "mistral" && cfg.SlidingWindow > 0 {
		a("attention.sliding_window", uint32(cfg.SlidingWindow))
	}
	kvs = append(kvs, KV{KeyFileType, ft}, KV{KeyQuantVersion, uint32(2)}, KV{KeyAlignment, opts.Alignment})
	return append(kvs, v.KVs()...), nil
}

// ropeFreqs is llama.cpp's rope_freqs.weight for Llama 3 rope scaling: per
// frequency the factor its inv_freq is divided by (1 for high frequencies,
// the scaling factor for low ones, interpolated in between).
func ropeFreqs(cfg *modelcfg.Config, headDim int) []float32 {
	rs := cfg.RopeScaling
	old := float64(rs.OriginalMaxPositionEmbeddings)
	lowWave, highWave := old/rs.LowFreqFactor, old/rs.HighFreqFactor
	out := make([]float32, headDim/2)
	for i := range out {
		f := 1 / math.Pow(cfg.RopeTheta, float64(2*i)/float64(headDim))
		wave := 2 * math.Pi / f
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = float32(rs.Factor)
		default:
			s := (old/wave - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
			out[i] = float32(1 / ((1-s)/rs.Factor + s))
		}
	}
	return out
}

// modelTensor is one tensor of the output with where its values come from.
type modelTensor struct {
	head   TensorHeader
	source string    // HF name ("" for a computed tensor)
	values []float32 // a computed tensor's values
	heads  int       // > 0: permute rows for ggml's rotary layout in this many heads
}

// PlanModel lists the output tensors for the HF tensors src of a model with
// config cfg: llama.cpp's names and order, types per opts.Type, the q/k row
// permutation for the llama architecture, rope_freqs for Llama 3 scaling, and
// no output.weight when the embeddings are tied.
func planModel(cfg *modelcfg.Config, src []SourceTensor, typ TensorType, mix Mix) ([]modelTensor, error) {
	arch, err := Architecture(cfg.ModelType)
	if err != nil {
		return nil, err
	}
	headDim := cfg.HeadDim
	if headDim == 0 {
		headDim = cfg.HiddenSize / cfg.NumAttentionHeads
	}
	var out []modelTensor
	if rs := cfg.RopeScaling; rs != nil && rs.Type == "llama3" {
		out = append(out, modelTensor{head: TensorHeader{Name: "rope_freqs.weight", Shape: []int{headDim / 2}, Type: F32}, values: ropeFreqs(cfg, headDim)})
	}
	seen := map[string]bool{}
	for _, t := range src {
		name, skip, err := ModelTensorName(t.Name)
		if err != nil {
			return nil, fmt.Errorf("gguf: %w", err)
		}
		if skip || (name == "output.weight" && cfg.TieWordEmbeddings) {
			continue
		}
		if len(t.Shape) == 0 || len(t.Shape) > 2 {
			return nil, fmt.Errorf("gguf: tensor %s has shape %v; want a vector or a matrix", t.Name, t.Shape)
		}
		mt := modelTensor{head: TensorHeader{Name: name, Shape: t.Shape, Type: F32}, source: t.Name}
		if len(t.Shape) == 2 {
			mt.head.Type = typ
			if typ == Q8_0 && t.Shape[1]%32 != 0 {
				mt.head.Type = F16
			}
			if mix == MixQ4_K_M {
				mt.head.Type = TensorTypeQ4_K_M(name, t.Shape[1], cfg.NumHiddenLayers, cfg.TieWordEmbeddings)
			}
		}
		if arch == "llama" {
			switch {
			case strings.Contains(name, ".attn_q."):
				mt.heads = cfg.NumAttentionHeads
			case strings.Contains(name, ".attn_k."):
				mt.heads = cfg.NumKeyValueHeads
			}
		}
		seen[name] = true
		out = append(out, mt)
	}
	for _, need := range []string{"token_embd.weight", "output_norm.weight"} {
		if !seen[need] {
			return nil, fmt.Errorf("gguf: the model has no tensor for %s", need)
		}
	}
	if !cfg.TieWordEmbeddings && !seen["output.weight"] {
		return nil, errors.New("gguf: the model has no lm_head.weight and its embeddings are not tied")
	}
	// llama.cpp looks tensors up by name, so the order only matters for
	// reading: the checkpoint's order is kept, with the layers in numeric order.
	sortModelTensors(out)
	return out, nil
}

// sortModelTensors orders tensors as llama.cpp's converter writes them:
// rope_freqs, token_embd, then each block, then output_norm and output.
func sortModelTensors(ts []modelTensor) {
	key := func(n string) (int, int) {
		switch {
		case n == "rope_freqs.weight":
			return 0, 0
		case n == "token_embd.weight":
			return 1, 0
		case strings.HasPrefix(n, "blk."):
			l, _ := strconv.Atoi(strings.SplitN(n, ".", 3)[1])
			return 2, l
		}
		return 3, 0
	}
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0; j-- {
			g1, l1 := key(ts[j-1].head.Name)
			g2, l2 := key(ts[j].head.Name)
			if g1 < g2 || (g1 == g2 && l1 <= l2) {
				break
			}
			ts[j-1], ts[j] = ts[j], ts[j-1]
		}
	}
}

// ModelSource gives WriteModel the values of the HF tensors, a block of
// rows at a time.
type ModelSource interface {
	// Rows returns rows [r0, r1) of the HF tensor name as float32,
	// row-major, with any adapter already folded in. The slice is only read,
	// and only until the next call.
	Rows(name string, r0, r1 int) ([]float32, error)
	// RawRows returns rows [r0, r1) of name already encoded as ggml type t,
	// to be copied as they are, or ok false when the tensor must be converted
	// (stored as another type, or changed by an adapter).
	RawRows(name string, t TensorType, r0, r1 int) (data []byte, ok bool)
	// Done is called once rows [r0, r1) of name are written, so that their
	// memory can be released.
	Done(name string, r0, r1 int)
}

// blockValues is about how many values WriteModel converts at a time by
// default.
const blockValues = 1 << 20

// WriteModel writes a whole model as one llama.cpp GGUF file at path,
// atomically: ModelKVs's metadata, then the tensors of src (see planModel),
// their values from from. It streams: a tensor is read, converted and
// written in blocks of about a million values (whole rows), or copied raw
// when from has it in the output type, so that peak memory stays near one
// block plus what from holds (a q or k matrix of the llama architecture,
// whose rows are permuted per head, is read whole).
func WriteModel(path string, cfg *modelcfg.Config, v *Vocab, src []SourceTensor, from ModelSource, opts ModelOptions) (*ModelResult, error) {
	kvs, err := ModelKVs(cfg, v, opts)
	if err != nil {
		return nil, err
	}
	plan, err := planModel(cfg, src, opts.Type, opts.Mix)
	if err != nil {
		return nil, err
	}
	for _, t := range plan {
		if t.head.Name == "token_embd.weight" && t.head.Shape[0] != len(v.Tokens) {
			return nil, fmt.Errorf("gguf: the embeddings have %d rows, the tokenizer %d tokens (vocab_size)", t.head.Shape[0], len(v.Tokens))
		}
	}
	heads := make([]TensorHeader, len(plan))
	for i, t := range plan {
		heads[i] = t.head
	}
	res := &ModelResult{Architecture: kvs[0].Value.(string), Tensors: len(plan), VocabSize: len(v.Tokens), Tokenizer: v.Model, Pre: v.Pre}
	err = atomicfile.Write(path, func(w io.Writer) error {
		sw, err := NewWriter(w, kvs, heads)
		if err != nil {
			return err
		}
		for i, t := range plan {
			n, err := writeModelTensor(sw, t, from, cmp.Or(opts.BlockValues, blockValues))
			if err != nil {
				return err
			}
			res.Bytes += n
			if opts.Progress != nil {
				opts.Progress(i+1, len(plan))
			}
		}
		return sw.Close()
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// writeModelTensor writes one planned tensor in blocks of rows and returns
// its size in bytes.
func writeModelTensor(sw *Writer, t modelTensor, from ModelSource, block int) (int64, error) {
	name := t.head.Name
	if t.source == "" {
		data, err := EncodeTensor(t.values, t.head.Type)
		if err != nil {
			return 0, fmt.Errorf("gguf: %s: %w", name, err)
		}
		return int64(len(data)), sw.WriteTensor(name, data)
	}
	rows, cols := t.head.Shape[0], numel(t.head.Shape[1:])
	if len(t.head.Shape) == 1 {
		rows, cols = 1, t.head.Shape[0]
	}
	step := max(1, block/cols)
	if t.heads > 0 {
		step = rows // the permutation moves rows across the whole matrix
	}
	var n int64
	for r0 := 0; r0 < rows; r0 += step {
		r1 := min(rows, r0+step)
		data, ok := []byte(nil), false
		if t.heads == 0 {
			data, ok = from.RawRows(t.source, t.head.Type, r0, r1)
		}
		if !ok {
			vals, err := from.Rows(t.source, r0, r1)
			if err != nil {
				return 0, err
			}
			if len(vals) != (r1-r0)*cols {
				return 0, fmt.Errorf("gguf: %s: got %d values for rows %d to %d of shape %v", t.source, len(vals), r0, r1, t.head.Shape)
			}
			if t.heads > 0 {
				if vals, err = permuteRows(vals, rows, cols, t.heads); err != nil {
					return 0, fmt.Errorf("gguf: %s: %w", t.source, err)
				}
			}
			if data, err = EncodeTensor(vals, t.head.Type); err != nil {
				return 0, fmt.Errorf("gguf: %s: %w", name, err)
			}
		}
		if err := sw.WriteTensorPart(name, data); err != nil {
			return 0, err
		}
		n += int64(len(data))
		from.Done(t.source, r0, r1)
	}
	return n, nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// EncodeTensor encodes row-major values as ggml type t (F32, F16, BF16,
// Q8_0, Q5_0, Q4_K or Q6_K; for the quantised types the row length, and so
// the count, is a multiple of the block size: 32, or 256 for Q4_K and Q6_K). For
// F32 on a little-endian host the result shares vals' memory.
func EncodeTensor(vals []float32, t TensorType) ([]byte, error) {
	switch t {
	case F32:
		if littleEndian && len(vals) > 0 {
			// The values' own bytes: no copy of what may be the largest tensor.
			return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), 4*len(vals)), nil
		}
		return safetensors.EncodeFloat32(vals, safetensors.F32)
	case F16:
		return safetensors.EncodeFloat32(vals, safetensors.F16)
	case BF16:
		return safetensors.EncodeFloat32(vals, safetensors.BF16)
	case Q8_0:
		return EncodeQ8_0(vals)
	case Q5_0:
		return EncodeQ5_0(vals)
	case Q4_K:
		return EncodeQ4_K(vals)
	case Q6_K:
		return EncodeQ6_K(vals)
	}
	return nil, fmt.Errorf("cannot encode tensor type %s", t)
}

// Q8_0 block layout: 32 values share an f16 scale d, each stored as the int8
// round(x/d), d = max|x|/127 over the block.
const (
	Q8_0BlockSize  = 32
	Q8_0BlockBytes = 2 + Q8_0BlockSize
)

// EncodeQ8_0 quantises vals (a multiple of 32 of them) block by block as
// ggml's reference quantize_row_q8_0: d = amax/127 rounded to f16 for
// storage, q = round-half-away(x·(1/d)) with the unrounded d.
func EncodeQ8_0(vals []float32) ([]byte, error) {
	if len(vals)%Q8_0BlockSize != 0 {
		return nil, fmt.Errorf("Q8_0 needs a multiple of %d values, got %d", Q8_0BlockSize, len(vals))
	}
	out := make([]byte, len(vals)/Q8_0BlockSize*Q8_0BlockBytes)
	for b := 0; b < len(vals)/Q8_0BlockSize; b++ {
		blk := vals[b*Q8_0BlockSize : (b+1)*Q8_0BlockSize]
		var amax float32
		for _, x := range blk {
			amax = max(amax, float32(math.Abs(float64(x))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		o := out[b*Q8_0BlockBytes:]
		binary.LittleEndian.PutUint16(o, safetensors.F32ToF16(d))
		for i, x := range blk {
			o[2+i] = byte(int8(math.Round(float64(x * id))))
		}
	}
	return out, nil
}

// DecodeQ8_0 expands Q8_0 blocks to float32 (q·d).
func DecodeQ8_0(data []byte) ([]float32, error) {
	if len(data)%Q8_0BlockBytes != 0 {
		return nil, fmt.Errorf("Q8_0 data of %d bytes is not whole blocks of %d", len(data), Q8_0BlockBytes)
	}
	out := make([]float32, len(data)/Q8_0BlockBytes*Q8_0BlockSize)
	for b := 0; b < len(data)/Q8_0BlockBytes; b++ {
		o := data[b*Q8_0BlockBytes:]
		d := safetensors.F16ToF32(binary.LittleEndian.Uint16(o))
		for i := 0; i < Q8_0BlockSize; i++ {
			out[b*Q8_0BlockSize+i] = float32(int8(o[2+i])) * d
		}
	}
	return out, nil
}
