// Package tinymodel writes small random HuggingFace model directories for
// tests: config.json, weights (one model.safetensors or shards with an index),
// tokenizer.json, tokenizer_config.json and generation_config.json, for any of
// the supported architectures (llama, qwen2, mistral) and any size.
//
// Output is deterministic for a given Options: weights are drawn from a PCG
// generator seeded by Options.Seed, in a fixed tensor order, so the values do
// not depend on the number of shards. Linear and embedding weights are
// normal(0, 0.02) as HF initialises them; RMSNorm weights are 1 + normal(0, 0.1)
// and biases normal(0, 0.1), so that tests exercising them see their effect.
package tinymodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bidora/bidora/internal/atomicfile"

	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/safetensors"
)

// Options chooses the model to write. Zero fields take the defaults noted.
type Options struct {
	Arch             string // "llama" (default), "qwen2" or "mistral"
	HiddenSize       int    // default 64
	IntermediateSize int    // default 2×HiddenSize + 32 (not a multiple of the hidden size, on purpose)
	NumLayers        int    // default 2
	NumHeads         int    // default 4
	NumKVHeads       int    // default NumHeads/2 (grouped-query attention), at least 1
	HeadDim          int    // default HiddenSize/NumHeads
	// VocabSize defaults to the tokenizer's size rounded up to a multiple of 16;
	// it may not be smaller than the tokenizer.
	VocabSize             int
	MaxPositionEmbeddings int     // default 2048
	RopeTheta             float64 // default 10000 (llama), 1e6 (qwen2, mistral)
	// RopeScaling is written as rope_scaling (e.g. a llama3 block) when set.
	RopeScaling *modelcfg.RopeScaling
	// SlidingWindow is Mistral's window (0: null) and Qwen2's sliding_window with
	// use_sliding_window true.
	SlidingWindow int
	RMSNormEps    float64 // default 1e-5 (llama, mistral), 1e-6 (qwen2)
	// DType of the stored weights: F32 (default), BF16 or F16.
	DType safetensors.DType
	// Tied writes tie_word_embeddings true and no lm_head.weight.
	Tied bool
	// Shards > 1 splits the weights into that many files plus
	// model.safetensors.index.json.
	Shards int
	Seed   uint64
	// TokenizerDir, when set, is copied (tokenizer.json, tokenizer_config.json
	// and special_tokens_map.json if present); otherwise the built-in tiny
	// byte-level BPE tokenizer is written.
	TokenizerDir string
}

func (o Options) withDefaults() (Options, error) {
	if o.Arch == "" {
		o.Arch = "llama"
	}
	switch o.Arch {
	case "llama", "qwen2", "mistral":
	default:
		return o, fmt.Errorf("tinymodel: arch %q is not supported; supported: llama, qwen2, mistral", o.Arch)
	}
	if o.HiddenSize == 0 {
		o.HiddenSize = 64
	}
	if o.IntermediateSize == 0 {
		o.IntermediateSize = 2*o.HiddenSize + 32
	}
	if o.NumLayers == 0 {
		o.NumLayers = 2
	}
	if o.NumHeads == 0 {
		o.NumHeads = 4
	}
	if o.NumKVHeads == 0 {
		o.NumKVHeads = max(1, o.NumHeads/2)
	}
	if o.HeadDim == 0 && o.NumHeads > 0 {
		o.HeadDim = o.HiddenSize / o.NumHeads
	}
	if o.MaxPositionEmbeddings == 0 {
		o.MaxPositionEmbeddings = 2048
	}
	if o.RopeTheta == 0 {
		o.RopeTheta = 10000
		if o.Arch != "llama" {
			o.RopeTheta = 1e6
		}
	}
	if o.RMSNormEps == 0 {
		o.RMSNormEps = 1e-5
		if o.Arch == "qwen2" {
			o.RMSNormEps = 1e-6
		}
	}
	if o.DType == "" {
		o.DType = safetensors.F32
	}
	switch o.DType {
	case safetensors.F32, safetensors.BF16, safetensors.F16:
	default:
		return o, fmt.Errorf("tinymodel: dtype %s is not supported; want F32, BF16 or F16", o.DType)
	}
	if o.Shards == 0 {
		o.Shards = 1
	}
	if o.Shards < 0 {
		return o, fmt.Errorf("tinymodel: shards must be positive, got %d", o.Shards)
	}
	return o, nil
}

var (
	architectures = map[string]string{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}
	torchDtypes   = map[safetensors.DType]string{safetensors.F32: "float32", safetensors.BF16: "bfloat16", safetensors.F16: "float16"}
)

// Write writes a random model directory (created if needed) as opts describes.
func Write(dir string, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tinymodel: %w", err)
	}
	tok, err := tokenizerFiles(o.TokenizerDir)
	if err != nil {
		return err
	}
	if o.VocabSize == 0 {
		o.VocabSize = (tok.size + 15) / 16 * 16
	}
	if o.VocabSize < tok.size {
		return fmt.Errorf("tinymodel: vocab_size %d is smaller than the tokenizer's %d tokens", o.VocabSize, tok.size)
	}
	cfgJSON, err := configJSON(o, tok)
	if err != nil {
		return err
	}
	cfg, err := modelcfg.Parse(cfgJSON)
	if err != nil {
		return fmt.Errorf("tinymodel: options give an invalid model: %w", err)
	}
	if err := writeWeights(dir, o, cfg); err != nil {
		return err
	}
	for name, data := range tok.files {
		if err := atomicfile.WriteFile(filepath.Join(dir, name), data); err != nil {
			return err
		}
	}
	gen := map[string]any{"_from_model_config": true, "transformers_version": "4.46.0"}
	if tok.bos >= 0 {
		gen["bos_token_id"] = tok.bos
	}
	if tok.eos >= 0 {
		gen["eos_token_id"] = tok.eos
	}
	if err := writeJSON(filepath.Join(dir, "generation_config.json"), gen); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), cfgJSON)
}

// configJSON renders config.json as transformers writes it for the architecture.
func configJSON(o Options, tok *tokenizer) ([]byte, error) {
	c := map[string]any{
		"architectures":           []string{architectures[o.Arch]},
		"model_type":              o.Arch,
		"hidden_size":             o.HiddenSize,
		"intermediate_size":       o.IntermediateSize,
		"num_hidden_layers":       o.NumLayers,
		"num_attention_heads":     o.NumHeads,
		"num_key_value_heads":     o.NumKVHeads,
		"vocab_size":              o.VocabSize,
		"max_position_embeddings": o.MaxPositionEmbeddings,
		"rms_norm_eps":            o.RMSNormEps,
		"rope_theta":              o.RopeTheta,
		"rope_scaling":            nil,
		"tie_word_embeddings":     o.Tied,
		"hidden_act":              "silu",
		"torch_dtype":             torchDtypes[o.DType],
		"initializer_range":       0.02,
		"attention_dropout":       0.0,
		"use_cache":               true,
		"transformers_version":    "4.46.0",
		"bos_token_id":            nil,
		"eos_token_id":            nil,
	}
	if tok.bos >= 0 {
		c["bos_token_id"] = tok.bos
	}
	if tok.eos >= 0 {
		c["eos_token_id"] = tok.eos
	}
	if o.RopeScaling != nil {
		rs := map[string]any{"rope_type": o.RopeScaling.Type, "factor": o.RopeScaling.Factor}
		if o.RopeScaling.Type == "llama3" {
			rs["low_freq_factor"] = o.RopeScaling.LowFreqFactor
			rs["high_freq_factor"] = o.RopeScaling.HighFreqFactor
			rs["original_max_position_embeddings"] = o.RopeScaling.OriginalMaxPositionEmbeddings
		}
		c["rope_scaling"] = rs
	}
	switch o.Arch {
	case "llama":
		c["head_dim"] = o.HeadDim
		c["attention_bias"] = false
		c["mlp_bias"] = false
		c["pretraining_tp"] = 1
	case "mistral":
		c["head_dim"] = o.HeadDim
		c["sliding_window"] = nil
		if o.SlidingWindow > 0 {
			c["sliding_window"] = o.SlidingWindow
		}
	case "qwen2":
		if o.HeadDim != o.HiddenSize/o.NumHeads {
			return nil, fmt.Errorf("tinymodel: qwen2 has no head_dim field; HeadDim must be HiddenSize/NumHeads = %d, got %d", o.HiddenSize/o.NumHeads, o.HeadDim)
		}
		c["use_sliding_window"] = o.SlidingWindow > 0
		c["sliding_window"] = o.MaxPositionEmbeddings
		if o.SlidingWindow > 0 {
			c["sliding_window"] = o.SlidingWindow
		}
		c["max_window_layers"] = o.NumLayers
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("tinymodel: %w", err)
	}
	return append(data, '\n'), nil
}

// tensorSpec is one weight of the model, in generation order.
type tensorSpec struct {
	name  string
	shape []int
	kind  int // kindLinear, kindNorm, kindBias
}

const (
	kindLinear = iota
	kindNorm
	kindBias
)

// TensorNames lists the weight names a model with cfg has, in HF's order.
func TensorNames(cfg *modelcfg.Config) []string {
	specs := tensorSpecs(cfg)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return names
}

func tensorSpecs(cfg *modelcfg.Config) []tensorSpec {
	h := cfg.HiddenSize
	specs := []tensorSpec{{"model.embed_tokens.weight", []int{cfg.VocabSize, h}, kindLinear}}
	for l := range cfg.NumHiddenLayers {
		p := "model.layers." + strconv.Itoa(l) + "."
		specs = append(specs, tensorSpec{p + "input_layernorm.weight", []int{h}, kindNorm})
		for _, proj := range modelcfg.Projections {
			out, in, _ := cfg.ProjShape(proj)
			block := "self_attn."
			if proj == "gate_proj" || proj == "up_proj" || proj == "down_proj" {
				block = "mlp."
			}
			specs = append(specs, tensorSpec{p + block + proj + ".weight", []int{out, in}, kindLinear})
			if cfg.QKVBias() && (proj == "q_proj" || proj == "k_proj" || proj == "v_proj") {
				specs = append(specs, tensorSpec{p + block + proj + ".bias", []int{out}, kindBias})
			}
		}
		specs = append(specs, tensorSpec{p + "post_attention_layernorm.weight", []int{h}, kindNorm})
	}
	specs = append(specs, tensorSpec{"model.norm.weight", []int{h}, kindNorm})
	if !cfg.TieWordEmbeddings {
		specs = append(specs, tensorSpec{"lm_head.weight", []int{cfg.VocabSize, h}, kindLinear})
	}
	return specs
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// writeWeights generates every tensor in order and streams it to its shard,
// so that memory holds one tensor at a time.
func writeWeights(dir string, o Options, cfg *modelcfg.Config) error {
	specs := tensorSpecs(cfg)
	if o.Shards > len(specs) {
		return fmt.Errorf("tinymodel: %d shards for %d tensors", o.Shards, len(specs))
	}
	// Split into contiguous shards of roughly equal size.
	var total int
	for _, s := range specs {
		total += numel(s.shape)
	}
	var groups [][]tensorSpec
	start, acc := 0, 0
	for i, s := range specs {
		acc += numel(s.shape)
		left := len(specs) - i - 1
		need := o.Shards - len(groups) - 1 // shards still to open after this one
		if need > 0 && (acc*o.Shards >= total*(len(groups)+1) || left == need) {
			groups = append(groups, specs[start:i+1])
			start = i + 1
		}
	}
	groups = append(groups, specs[start:])

	rng := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	weightMap := map[string]string{}
	var totalBytes int64
	for gi, g := range groups {
		name := safetensors.SingleFileName
		if o.Shards > 1 {
			name = safetensors.ShardFileName(gi+1, o.Shards)
		}
		infos := make([]safetensors.TensorInfo, len(g))
		for i, s := range g {
			infos[i] = safetensors.TensorInfo{Name: s.name, DType: o.DType, Shape: s.shape}
			weightMap[s.name] = name
		}
		w, err := safetensors.NewWriter(filepath.Join(dir, name), infos, map[string]string{"format": "pt"})
		if err != nil {
			return fmt.Errorf("tinymodel: %w", err)
		}
		for _, s := range g {
			vals := make([]float32, numel(s.shape))
			for i := range vals {
				switch s.kind {
				case kindLinear:
					vals[i] = float32(0.02 * rng.NormFloat64())
				case kindNorm:
					vals[i] = float32(1 + 0.1*rng.NormFloat64())
				case kindBias:
					vals[i] = float32(0.1 * rng.NormFloat64())
				}
			}
			data, err := safetensors.EncodeFloat32(vals, o.DType)
			if err == nil {
				err = w.WriteTensor(s.name, data)
			}
			if err != nil {
				_ = w.Abort()
				return fmt.Errorf("tinymodel: %w", err)
			}
			totalBytes += int64(len(data))
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("tinymodel: %w", err)
		}
	}
	if o.Shards > 1 {
		idx := safetensors.Index{Metadata: map[string]any{"total_size": totalBytes}, WeightMap: weightMap}
		if err := writeJSON(filepath.Join(dir, safetensors.IndexFileName), idx); err != nil {
			return err
		}
		// A stale single file would shadow nothing but confuse readers.
		if err := os.Remove(filepath.Join(dir, safetensors.SingleFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tinymodel: %w", err)
		}
	} else if err := os.Remove(filepath.Join(dir, safetensors.IndexFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tinymodel: %w", err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("tinymodel: writing %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(data, '\n'))
}
