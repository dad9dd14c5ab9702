// Package modelcfg reads and validates the config.json of a HuggingFace decoder model
// (Llama 1/2/3.x, Qwen2/2.5, Mistral) into the handful of numbers the engine needs.
package modelcfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bidora/bidora/internal/metafile"
)

// Supported lists the model_type values bidora can train.
var Supported = []string{"llama", "qwen2", "mistral"}

// RopeScaling is the rope_scaling block of config.json (nil when absent).
type RopeScaling struct {
	// Type is "llama3", "linear" or "default" (HF writes it as rope_type or type).
	Type                          string  `json:"rope_type"`
	LegacyType                    string  `json:"type"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// Config is a decoder model's shape and numerics as read from config.json, with
// HuggingFace's defaults filled in.
type Config struct {
	ModelType             string       `json:"model_type"`
	Architectures         []string     `json:"architectures"`
	HiddenSize            int          `json:"hidden_size"`
	IntermediateSize      int          `json:"intermediate_size"`
	NumHiddenLayers       int          `json:"num_hidden_layers"`
	NumAttentionHeads     int          `json:"num_attention_heads"`
	NumKeyValueHeads      int          `json:"num_key_value_heads"`
	HeadDim               int          `json:"head_dim"`
	VocabSize             int          `json:"vocab_size"`
	MaxPositionEmbeddings int          `json:"max_position_embeddings"`
	RMSNormEps            float64      `json:"rms_norm_eps"`
	RopeTheta             float64      `json:"rope_theta"`
	RopeScaling           *RopeScaling `json:"rope_scaling"`
	TieWordEmbeddings     bool         `json:"tie_word_embeddings"`
	AttentionBias         bool         `json:"attention_bias"`
	MLPBias               bool         `json:"mlp_bias"`
	HiddenAct             string       `json:"hidden_act"`
	TorchDtype            string       `json:"torch_dtype"`
	BOSTokenID            *int         `json:"bos_token_id"`
	// EOSTokenIDs holds eos_token_id, which HF allows to be an int or a list.
	EOSTokenIDs []int `json:"-"`
	// SlidingWindow is the attention window W of the layers that slide (0 = full
	// attention everywhere): query i sees keys j with i − W < j ≤ i. Mistral slides
	// in every layer; Qwen2 only with use_sliding_window, in the layers LayerTypes
	// names.
	SlidingWindow int `json:"-"`
	// LayerTypes is "full_attention" or "sliding_attention" per layer (Qwen2's
	// layer_types, derived from max_window_layers when absent); nil means every
	// layer slides when SlidingWindow > 0.
	LayerTypes []string `json:"-"`
}

// QKVBias reports whether the q, k and v projections carry a bias: always for
// Qwen2, never for Mistral, attention_bias for Llama (as transformers builds them;
// Qwen2 and Mistral ignore attention_bias).
func (c *Config) QKVBias() bool {
	switch c.ModelType {
	case "qwen2":
		return true
	case "mistral":
		return false
	}
	return c.AttentionBias
}

// OBias reports whether o_proj carries a bias: only a Llama with attention_bias.
func (c *Config) OBias() bool { return c.ModelType == "llama" && c.AttentionBias }

// MLPBiases reports whether gate_proj, up_proj and down_proj carry biases: only a
// Llama with mlp_bias.
func (c *Config) MLPBiases() bool { return c.ModelType == "llama" && c.MLPBias }

// Window is the attention window of layer l (0 = full attention).
func (c *Config) Window(l int) int {
	if c.SlidingWindow <= 0 {
		return 0
	}
	if c.LayerTypes != nil && (l < 0 || l >= len(c.LayerTypes) || c.LayerTypes[l] != slidingAttention) {
		return 0
	}
	return c.SlidingWindow
}

const (
	fullAttention    = "full_attention"
	slidingAttention = "sliding_attention"
)

// FieldError is a config.json field with a value bidora cannot use. Msg names
// the field and says what is allowed.
type FieldError struct {
	Field string // the JSON key, e.g. "num_hidden_layers" ("" when about the whole shape)
	Msg   string
}

func (e *FieldError) Error() string { return e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Limits on a config's sizes. Each is far above any published model (Llama 3.1
// 405B has hidden_size 16384, 126 layers, vocab 128256) and low enough that the
// products the engine and the memory planner form stay exact in int64.
const (
	MaxDim       = 1 << 20 // hidden_size, intermediate_size
	MaxLayers    = 1 << 14 // num_hidden_layers
	MaxHeads     = 1 << 14 // num_attention_heads, num_key_value_heads, head_dim
	MaxVocab     = 1 << 26 // vocab_size
	MaxPositions = 1 << 30 // max_position_embeddings (positions are int32 in the KV cache)
	// MaxParams bounds the parameter count (10^13, 25 times the largest open models).
	MaxParams = 1e13
)

// defaultMaxPositions is max_position_embeddings when config.json leaves it out
// (transformers' defaults for LlamaConfig, Qwen2Config and MistralConfig).
var defaultMaxPositions = map[string]int{"llama": 2048, "qwen2": 32768, "mistral": 4096 * 32}

// Load reads dir/config.json (dir may also be the path of the JSON file itself),
// at most metafile.MaxJSONBytes of it.
func Load(dir string) (*Config, error) {
	path := dir
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		path = filepath.Join(dir, "config.json")
	}
	data, err := metafile.Read(path, metafile.MaxJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("reading model config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// defaultKVHeads is num_key_value_heads when config.json leaves the field out
// (transformers' class defaults; an explicit null means num_attention_heads).
var defaultKVHeads = map[string]int{"qwen2": 32, "mistral": 8}

// Transformers' defaults for Mistral's sliding_window and Qwen2's sliding_window
// and max_window_layers when config.json leaves them out.
const (
	defaultSlidingWindow   = 4096
	defaultMaxWindowLayers = 28
)

// ropeParams is a rope_scaling or rope_parameters block (transformers 5 writes
// rope_parameters, with rope_theta inside).
type ropeParams struct {
	RopeScaling
	RopeTheta           *float64 `json:"rope_theta"`
	PartialRotaryFactor *float64 `json:"partial_rotary_factor"`
}

func (p *ropeParams) empty() bool {
	return p == nil || (p.RopeScaling == RopeScaling{} && p.RopeTheta == nil && p.PartialRotaryFactor == nil)
}

// Parse decodes and validates config.json content as transformers' LlamaConfig,
// Qwen2Config and MistralConfig read it, filling their defaults for the fields it
// leaves out (a field given as 0 or negative is an error, not a request for the
// default). Fields that would build a model bidora does not compute are refused
// with a *FieldError naming them.
func Parse(data []byte) (*Config, error) {
	var raw struct {
		Config
		EOS                 json.RawMessage `json:"eos_token_id"`
		NumKVHeads          json.RawMessage `json:"num_key_value_heads"`
		SlidingWindow       json.RawMessage `json:"sliding_window"`
		UseSlidingWindow    *bool           `json:"use_sliding_window"`
		MaxWindowLayers     *int            `json:"max_window_layers"`
		LayerTypes          []string        `json:"layer_types"`
		RMSNormEps          *float64        `json:"rms_norm_eps"`
		RopeTheta           *float64        `json:"rope_theta"`
		RopeScaling         *ropeParams     `json:"rope_scaling"`
		RopeParameters      *ropeParams     `json:"rope_parameters"`
		PartialRotaryFactor *float64        `json:"partial_rotary_factor"`
		AttentionDropout    *float64        `json:"attention_dropout"`
		MaxPositions        *int            `json:"max_position_embeddings"`
	}
	if err := metafile.CheckObject(data); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	c := raw.Config
	switch {
	case raw.MaxPositions == nil:
		c.MaxPositionEmbeddings = defaultMaxPositions[c.ModelType]
	case *raw.MaxPositions <= 0:
		return nil, fieldErr("max_position_embeddings", "max_position_embeddings must be a positive integer, got %d", *raw.MaxPositions)
	default:
		c.MaxPositionEmbeddings = *raw.MaxPositions
	}
	ropeField, err := c.parseRope(raw.RopeTheta, raw.RopeScaling, raw.RopeParameters, raw.PartialRotaryFactor)
	if err != nil {
		return nil, err
	}
	if raw.RMSNormEps != nil {
		c.RMSNormEps = *raw.RMSNormEps
	} else {
		c.RMSNormEps = 1e-6
	}
	if d := raw.AttentionDropout; d != nil && *d != 0 {
		return nil, fieldErr("attention_dropout", "attention_dropout %g is not supported: bidora has no dropout on attention probabilities; want 0", *d)
	}
	if len(raw.EOS) > 0 && string(raw.EOS) != "null" {
		var one int
		if err := json.Unmarshal(raw.EOS, &one); err == nil {
			c.EOSTokenIDs = []int{one}
		} else if err := json.Unmarshal(raw.EOS, &c.EOSTokenIDs); err != nil {
			return nil, fmt.Errorf("eos_token_id: want an integer or a list of integers, got %s", raw.EOS)
		}
	}
	switch {
	case len(raw.NumKVHeads) == 0: // absent: the class default
		if d, ok := defaultKVHeads[c.ModelType]; ok {
			c.NumKeyValueHeads = d
		} else {
			c.NumKeyValueHeads = c.NumAttentionHeads
		}
	case string(raw.NumKVHeads) == "null":
		c.NumKeyValueHeads = c.NumAttentionHeads
	default:
		if err := json.Unmarshal(raw.NumKVHeads, &c.NumKeyValueHeads); err != nil {
			return nil, fieldErr("num_key_value_heads", "num_key_value_heads: want an integer, got %s", raw.NumKVHeads)
		}
	}
	if err := c.parseSlidingWindow(raw.SlidingWindow, raw.UseSlidingWindow, raw.MaxWindowLayers, raw.LayerTypes); err != nil {
		return nil, err
	}
	if c.HeadDim == 0 && c.NumAttentionHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	switch c.HiddenAct {
	case "":
		c.HiddenAct = "silu"
	case "swish": // the same function in transformers' ACT2FN
		c.HiddenAct = "silu"
	}
	if c.ModelType != "llama" {
		// Qwen2 and Mistral build their projections without reading these.
		c.AttentionBias, c.MLPBias = false, false
	}
	if err := c.Validate(); err != nil {
		var fe *FieldError
		if ropeField != "rope_scaling" && errors.As(err, &fe) && fe.Field == "rope_scaling" {
			return nil, fieldErr(ropeField, "%s", strings.Replace(fe.Msg, "rope_scaling", ropeField, 1))
		}
		return nil, err
	}
	return &c, nil
}

// parseRope sets RopeTheta and RopeScaling as transformers standardises them:
// the block is rope_scaling when given (and not empty), else rope_parameters; its
// rope_theta wins over the top-level one, 10000 when neither is given; its type is
// rope_type, else type, else "default"; llama3 scaling takes
// original_max_position_embeddings from max_position_embeddings when absent. It
// returns the name of the block used for error messages.
func (c *Config) parseRope(theta *float64, scaling, params *ropeParams, partial *float64) (string, error) {
	field, p := "rope_scaling", scaling
	if p.empty() {
		field, p = "rope_parameters", params
	}
	c.RopeTheta, c.RopeScaling = 10000, nil
	if theta != nil {
		c.RopeTheta = *theta
	}
	if !p.empty() {
		if p.RopeTheta != nil {
			c.RopeTheta = *p.RopeTheta
		}
		if p.PartialRotaryFactor != nil {
			partial = p.PartialRotaryFactor
		}
		rs := p.RopeScaling
		if rs.Type == "" {
			rs.Type = rs.LegacyType
		}
		if rs.Type == "" {
			rs.Type = "default"
		}
		if rs.Type == "llama3" && rs.OriginalMaxPositionEmbeddings == 0 {
			rs.OriginalMaxPositionEmbeddings = c.MaxPositionEmbeddings
		}
		if rs != (RopeScaling{Type: "default"}) || field == "rope_scaling" {
			c.RopeScaling = &rs
		}
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return "", fieldErr("rope_theta", "rope_theta must be a positive number, got %g", c.RopeTheta)
	}
	if partial != nil && *partial != 1 {
		return "", fieldErr("partial_rotary_factor", "partial_rotary_factor %g is not supported; bidora rotates the whole head (want 1)", *partial)
	}
	return field, nil
}

// parseSlidingWindow sets SlidingWindow and LayerTypes as transformers builds the
// attention: Mistral slides in every layer by sliding_window (4096 when absent,
// full attention when null); Qwen2 only with use_sliding_window true, in the
// layers layer_types marks "sliding_attention" (by default those from
// max_window_layers on); Llama has no window.
func (c *Config) parseSlidingWindow(sw json.RawMessage, use *bool, maxWindowLayers *int, layerTypes []string) error {
	window := func() error {
		switch {
		case len(sw) == 0:
			c.SlidingWindow = defaultSlidingWindow
		case string(sw) == "null":
			c.SlidingWindow = 0
		default:
			if err := json.Unmarshal(sw, &c.SlidingWindow); err != nil || c.SlidingWindow <= 0 {
				return fieldErr("sliding_window", "sliding_window must be a positive integer or null, got %s", sw)
			}
		}
		return nil
	}
	switch c.ModelType {
	case "mistral":
		return window()
	case "qwen2":
		if layerTypes != nil {
			if len(layerTypes) != c.NumHiddenLayers {
				return fieldErr("layer_types", "layer_types has %d entries; want one per layer (num_hidden_layers = %d)", len(layerTypes), c.NumHiddenLayers)
			}
			for i, t := range layerTypes {
				if t != fullAttention && t != slidingAttention {
					return fieldErr("layer_types", "layer_types[%d] is %q; want %q or %q", i, t, fullAttention, slidingAttention)
				}
			}
		}
		if use == nil || !*use {
			return nil // transformers sets sliding_window to None
		}
		if err := window(); err != nil {
			return err
		}
		if layerTypes == nil {
			first := defaultMaxWindowLayers
			if maxWindowLayers != nil {
				first = *maxWindowLayers
			}
			layerTypes = make([]string, max(c.NumHiddenLayers, 0))
			for i := range layerTypes {
				layerTypes[i] = fullAttention
				if i >= first {
					layerTypes[i] = slidingAttention
				}
			}
		}
		c.LayerTypes = layerTypes
	}
	return nil
}

// Validate checks that the shape is consistent, of a plausible size (see the
// Max constants) and the architecture supported. Errors are *FieldError.
// MaxPositionEmbeddings 0 means unknown (a config built in code); Parse never
// leaves it 0.
func (c *Config) Validate() error {
	if !slices.Contains(Supported, c.ModelType) {
		return fieldErr("model_type", "model_type %q is not supported; supported: %s", c.ModelType, strings.Join(Supported, ", "))
	}
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{
		{"hidden_size", c.HiddenSize, MaxDim}, {"intermediate_size", c.IntermediateSize, MaxDim},
		{"num_hidden_layers", c.NumHiddenLayers, MaxLayers}, {"num_attention_heads", c.NumAttentionHeads, MaxHeads},
		{"num_key_value_heads", c.NumKeyValueHeads, MaxHeads}, {"head_dim", c.HeadDim, MaxHeads}, {"vocab_size", c.VocabSize, MaxVocab},
	} {
		if f.v <= 0 {
			return fieldErr(f.name, "%s must be a positive integer, got %d", f.name, f.v)
		}
		if f.v > f.max {
			return fieldErr(f.name, "%s is %d, more than the %d bidora accepts: not a real model's config", f.name, f.v, f.max)
		}
	}
	if c.MaxPositionEmbeddings < 0 {
		return fieldErr("max_position_embeddings", "max_position_embeddings must be a positive integer, got %d", c.MaxPositionEmbeddings)
	}
	if c.MaxPositionEmbeddings > MaxPositions {
		return fieldErr("max_position_embeddings", "max_position_embeddings is %d, more than the %d bidora accepts", c.MaxPositionEmbeddings, MaxPositions)
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fieldErr("num_key_value_heads", "num_key_value_heads (%d) must divide num_attention_heads (%d)", c.NumKeyValueHeads, c.NumAttentionHeads)
	}
	if c.HeadDim%2 != 0 {
		return fieldErr("head_dim", "head_dim must be even for rotary embeddings, got %d", c.HeadDim)
	}
	if n := c.ParamCount(); n > MaxParams {
		return fieldErr("", "the shape in config.json has %.3g parameters, more than the %.0e bidora accepts: not a real model's config", n, float64(MaxParams))
	}
	if c.SlidingWindow < 0 {
		return fieldErr("sliding_window", "sliding_window must be a positive integer or null, got %d", c.SlidingWindow)
	}
	if c.LayerTypes != nil && len(c.LayerTypes) != c.NumHiddenLayers {
		return fieldErr("layer_types", "layer_types has %d entries; want one per layer (num_hidden_layers = %d)", len(c.LayerTypes), c.NumHiddenLayers)
	}
	if c.HiddenAct != "silu" {
		return fieldErr("hidden_act", "hidden_act %q is not supported; want silu", c.HiddenAct)
	}
	if !(c.RMSNormEps > 0) || math.IsInf(c.RMSNormEps, 0) {
		return fieldErr("rms_norm_eps", "rms_norm_eps must be positive, got %g", c.RMSNormEps)
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return fieldErr("rope_theta", "rope_theta must be a positive number, got %g", c.RopeTheta)
	}
	if rs := c.RopeScaling; rs != nil {
		finite := !math.IsNaN(rs.Factor+rs.LowFreqFactor+rs.HighFreqFactor) && !math.IsInf(rs.Factor+rs.LowFreqFactor+rs.HighFreqFactor, 0)
		switch rs.Type {
		case "llama3":
			if !finite || rs.Factor <= 0 || rs.LowFreqFactor <= 0 || rs.HighFreqFactor <= rs.LowFreqFactor || rs.OriginalMaxPositionEmbeddings <= 0 {
				return fieldErr("rope_scaling", "rope_scaling llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0")
			}
		case "linear":
			if !finite || rs.Factor <= 0 {
				return fieldErr("rope_scaling", "rope_scaling linear needs factor > 0")
			}
		case "default", "":
		default:
			return fieldErr("rope_scaling", "rope_scaling type %q is not supported; supported: llama3, linear, default", rs.Type)
		}
	}
	return nil
}

// ProjShape gives the [out, in] shape of one of a layer's seven projections
// (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).
func (c *Config) ProjShape(name string) (out, in int, ok bool) {
	q, kv := c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim
	switch name {
	case "q_proj":
		return q, c.HiddenSize, true
	case "k_proj", "v_proj":
		return kv, c.HiddenSize, true
	case "o_proj":
		return c.HiddenSize, q, true
	case "gate_proj", "up_proj":
		return c.IntermediateSize, c.HiddenSize, true
	case "down_proj":
		return c.HiddenSize, c.IntermediateSize, true
	}
	return 0, 0, false
}

// Projections are the seven linear layers of a decoder block, in HF order.
var Projections = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// ParamCount is NumParams computed in float64, so that it cannot overflow
// whatever the sizes (Validate refuses configs above MaxParams with it).
func (c *Config) ParamCount() float64 {
	h, i, l, v := float64(c.HiddenSize), float64(c.IntermediateSize), float64(c.NumHiddenLayers), float64(c.VocabSize)
	q, kv := float64(c.NumAttentionHeads)*float64(c.HeadDim), float64(c.NumKeyValueHeads)*float64(c.HeadDim)
	per := 2*q*h + 2*kv*h + 3*i*h + 2*h
	if c.QKVBias() {
		per += q + 2*kv
	}
	if c.OBias() {
		per += h
	}
	if c.MLPBiases() {
		per += 2*i + h
	}
	n := per*l + v*h + h
	if !c.TieWordEmbeddings {
		n += v * h
	}
	return n
}

// NumParams counts the model's parameters (embeddings once when tied). It is
// exact for validated configs; for others it saturates at math.MaxInt64 rather
// than overflowing.
func (c *Config) NumParams() int64 {
	if n := c.ParamCount(); !(math.Abs(n) < math.MaxInt64/2) {
		return math.MaxInt64
	}
	var per int64
	for _, p := range Projections {
		o, i, _ := c.ProjShape(p)
		per += int64(o) * int64(i)
	}
	if c.QKVBias() {
		per += int64((c.NumAttentionHeads + 2*c.NumKeyValueHeads) * c.HeadDim)
	}
	if c.OBias() {
		per += int64(c.HiddenSize)
	}
	if c.MLPBiases() {
		per += 2*int64(c.IntermediateSize) + int64(c.HiddenSize)
	}
	per += 2 * int64(c.HiddenSize) // two RMSNorms
	n := per*int64(c.NumHiddenLayers) + int64(c.VocabSize)*int64(c.HiddenSize) + int64(c.HiddenSize)
	if !c.TieWordEmbeddings {
		n += int64(c.VocabSize) * int64(c.HiddenSize)
	}
	return n
}
