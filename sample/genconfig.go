package sample

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bidora/bidora/internal/metafile"
)

// transformers' GenerationConfig defaults for the fields a file may leave out.
const (
	hfDefaultTemperature = 1.0
	hfDefaultTopK        = 50
	hfDefaultTopP        = 1.0
)

// GenerationConfig is the part of a model's generation_config.json that generation
// uses. Pointer fields are nil when the file does not set them.
type GenerationConfig struct {
	// EOSTokenIDs is eos_token_id, which may be an int or a list.
	EOSTokenIDs       []int
	DoSample          *bool
	Temperature       *float64
	TopK              *int
	TopP              *float64
	RepetitionPenalty *float64
	MaxNewTokens      *int
}

// LoadGenerationConfig reads dir/generation_config.json (dir may also be the file). A
// missing file gives an empty config and no error, as for transformers.
func LoadGenerationConfig(dir string) (*GenerationConfig, error) {
	path := dir
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		path = filepath.Join(dir, "generation_config.json")
	}
	data, err := metafile.Read(path, metafile.MaxJSONBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return &GenerationConfig{}, nil
	}
	var tooLarge *metafile.TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, err // names the file and the limit
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	g, err := ParseGenerationConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// ParseGenerationConfig decodes the contents of a generation_config.json.
func ParseGenerationConfig(data []byte) (*GenerationConfig, error) {
	var raw struct {
		EOS               json.RawMessage `json:"eos_token_id"`
		DoSample          *bool           `json:"do_sample"`
		Temperature       *float64        `json:"temperature"`
		TopK              *int            `json:"top_k"`
		TopP              *float64        `json:"top_p"`
		RepetitionPenalty *float64        `json:"repetition_penalty"`
		MaxNewTokens      *int            `json:"max_new_tokens"`
	}
	if err := metafile.CheckObject(data); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decoding generation config: %w", err)
	}
	g := &GenerationConfig{DoSample: raw.DoSample, Temperature: raw.Temperature, TopK: raw.TopK,
		TopP: raw.TopP, RepetitionPenalty: raw.RepetitionPenalty, MaxNewTokens: raw.MaxNewTokens}
	eos, err := parseIDs(raw.EOS)
	if err != nil {
		return nil, fmt.Errorf("field eos_token_id: %w", err)
	}
	g.EOSTokenIDs = eos
	return g, nil
}

// parseIDs reads null, an int or a list of ints.
func parseIDs(raw json.RawMessage) ([]int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("want an integer or a list of integers, got %s", raw)
	}
	return list, nil
}

// Sampling returns the sampling parameters the file asks for, with transformers'
// defaults for the fields it leaves out: greedy unless do_sample is true (then
// temperature 1, top_k 50, top_p 1 unless set), and the file's repetition_penalty in
// both cases. Greedy configs keep top_k and top_p so that a caller who sets only a
// temperature samples with the model's filters.
func (g *GenerationConfig) Sampling() Config {
	c := Config{TopK: hfDefaultTopK, TopP: hfDefaultTopP, RepetitionPenalty: 1}
	if g.TopK != nil {
		c.TopK = *g.TopK
	}
	if g.TopP != nil {
		c.TopP = *g.TopP
	}
	if g.RepetitionPenalty != nil {
		c.RepetitionPenalty = *g.RepetitionPenalty
	}
	if g.DoSample != nil && *g.DoSample {
		c.Temperature = hfDefaultTemperature
		if g.Temperature != nil {
			c.Temperature = *g.Temperature
		}
	}
	return c
}
