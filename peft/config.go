// Package peft reads and writes LoRA adapters in the format of HuggingFace PEFT:
// adapter_config.json plus adapter_model.safetensors, loadable by
// PeftModel.from_pretrained.
//
// Config is the adapter_config.json of a LoRA (or rsLoRA, DoRA) adapter on a
// decoder model; RankFor and ScaleFor resolve per-module ranks and scales from
// rank_pattern and alpha_pattern as PEFT does. KeyA, KeyB and KeyMagnitude
// name the tensors of one adapted projection; Load and Save read and write a
// whole adapter directory, checking that keys and shapes agree with the config.
package peft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bidora/bidora/internal/metafile"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bidora/bidora/internal/atomicfile"

	"github.com/bidora/bidora/modelcfg"
)

// File names of a PEFT adapter directory.
const (
	ConfigFileName  = "adapter_config.json"
	WeightsFileName = "adapter_model.safetensors"
)

// Config is a PEFT LoRA adapter_config.json.
type Config struct {
	PeftType    string  // always "LORA"
	TaskType    string  // "CAUSAL_LM"
	R           int     // default rank
	LoraAlpha   float64 // default alpha
	LoraDropout float64
	// TargetModules are module name suffixes such as "q_proj"; a module is
	// adapted when its name equals one or ends with "." + one.
	TargetModules []string
	UseDora       bool
	UseRslora     bool
	Bias          string // "none"
	FanInFanOut   bool
	// InitLoraWeights is PEFT's init_lora_weights when it is a boolean;
	// InitLoraWeightsMethod holds it when a file gives a method name instead
	// (such as "gaussian" or "pissa"), and is written back as given.
	InitLoraWeights       bool
	InitLoraWeightsMethod string
	BaseModelNameOrPath   string
	InferenceMode         bool
	// RankPattern and AlphaPattern map module-name regular expressions to a
	// rank or alpha, in file order (PEFT uses the first that matches).
	RankPattern  Patterns
	AlphaPattern Patterns
	// ModulesToSave must be empty: bidora does not train whole modules.
	ModulesToSave []string
}

// NewConfig returns the config bidora writes for a new adapter, with every
// field at the default bidora documents for new adapters.
func NewConfig(baseModel string, r int, alpha, dropout float64, targets []string) *Config {
	return &Config{
		PeftType: "LORA", TaskType: "CAUSAL_LM", R: r, LoraAlpha: alpha, LoraDropout: dropout,
		TargetModules: slices.Clone(targets), Bias: "none", InitLoraWeights: true,
		BaseModelNameOrPath: baseModel, InferenceMode: true,
	}
}

// Pattern maps a module-name regular expression to a value.
type Pattern struct {
	Key   string
	Value float64
}

// Patterns is a JSON object of Pattern entries whose order is kept.
type Patterns []Pattern

// UnmarshalJSON reads an object (or null) keeping the key order.
func (p *Patterns) UnmarshalJSON(data []byte) error {
	*p = nil
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("want an object mapping module patterns to numbers")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var v float64
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%q: want a number: %w", key, err)
		}
		*p = append(*p, Pattern{key, v})
	}
	_, err := dec.Token()
	return err
}

// MarshalJSON writes an object with keys sorted, as PEFT's save does.
func (p Patterns) MarshalJSON() ([]byte, error) {
	sorted := slices.Clone(p)
	slices.SortStableFunc(sorted, func(a, b Pattern) int { return strings.Compare(a.Key, b.Key) })
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range sorted {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(e.Key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			return nil, fmt.Errorf("pattern %q: value %v is not a JSON number", e.Key, e.Value)
		}
		b.WriteString(strconv.FormatFloat(e.Value, 'f', -1, 64))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// compile turns a PEFT pattern key into the regexp PEFT matches module names
// with: the key must match a whole dotted suffix of the name.
func compilePattern(key string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:.*\.)?(?:` + key + `)$`)
}

// Lookup returns the value of the first pattern matching module, a full
// dotted module name such as "model.layers.3.self_attn.q_proj". Patterns that
// are not valid regular expressions are skipped (Validate reports them).
func (p Patterns) Lookup(module string) (float64, bool) {
	for _, e := range p {
		re, err := compilePattern(e.Key)
		if err == nil && re.MatchString(module) {
			return e.Value, true
		}
	}
	return 0, false
}

// RankFor is the rank of the adapter on module (a full dotted module name
// such as "model.layers.3.self_attn.q_proj"): rank_pattern's first match, else r.
func (c *Config) RankFor(module string) int {
	if v, ok := c.RankPattern.Lookup(module); ok {
		return int(v)
	}
	return c.R
}

// AlphaFor is the alpha of the adapter on module: alpha_pattern's first match,
// else lora_alpha.
func (c *Config) AlphaFor(module string) float64 {
	if v, ok := c.AlphaPattern.Lookup(module); ok {
		return v
	}
	return c.LoraAlpha
}

// ScaleFor is the LoRA scale s of module: alpha/r, or alpha/√r with rsLoRA,
// with rank and alpha resolved through the patterns.
func (c *Config) ScaleFor(module string) float64 {
	r := float64(c.RankFor(module))
	if c.UseRslora {
		return c.AlphaFor(module) / math.Sqrt(r)
	}
	return c.AlphaFor(module) / r
}

// Targets reports whether target_modules selects module (a name or dotted path).
func (c *Config) Targets(module string) bool {
	for _, t := range c.TargetModules {
		if module == t || strings.HasSuffix(module, "."+t) {
			return true
		}
	}
	return false
}

// rawConfig is adapter_config.json as PEFT writes it, with the fields whose
// type varies across PEFT versions left raw. Unknown keys are ignored.
type rawConfig struct {
	PeftType            *string         `json:"peft_type"`
	TaskType            *string         `json:"task_type"`
	R                   *int            `json:"r"`
	LoraAlpha           *float64        `json:"lora_alpha"`
	LoraDropout         *float64        `json:"lora_dropout"`
	TargetModules       json.RawMessage `json:"target_modules"`
	UseDora             bool            `json:"use_dora"`
	UseRslora           bool            `json:"use_rslora"`
	Bias                *string         `json:"bias"`
	FanInFanOut         bool            `json:"fan_in_fan_out"`
	InitLoraWeights     json.RawMessage `json:"init_lora_weights"`
	BaseModelNameOrPath *string         `json:"base_model_name_or_path"`
	InferenceMode       bool            `json:"inference_mode"`
	RankPattern         json.RawMessage `json:"rank_pattern"`
	AlphaPattern        json.RawMessage `json:"alpha_pattern"`
	ModulesToSave       json.RawMessage `json:"modules_to_save"`
	// Later PEFT features that change the adapter's structure.
	LoraBias         bool            `json:"lora_bias"`
	LayerReplication json.RawMessage `json:"layer_replication"`
	TargetParameters json.RawMessage `json:"target_parameters"`
}

// ParseConfig decodes and validates adapter_config.json content.
func ParseConfig(data []byte) (*Config, error) {
	var raw rawConfig
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not valid adapter config JSON: %w", err)
	}
	c := &Config{
		UseDora: raw.UseDora, UseRslora: raw.UseRslora, FanInFanOut: raw.FanInFanOut,
		InferenceMode: raw.InferenceMode,
		Bias:          "none", InitLoraWeights: true, LoraAlpha: 8, LoraDropout: 0, R: 8,
	}
	if raw.PeftType != nil {
		c.PeftType = *raw.PeftType
	}
	if raw.TaskType != nil {
		c.TaskType = *raw.TaskType
	}
	if raw.R != nil {
		c.R = *raw.R
	}
	if raw.LoraAlpha != nil {
		c.LoraAlpha = *raw.LoraAlpha
	}
	if raw.LoraDropout != nil {
		c.LoraDropout = *raw.LoraDropout
	}
	if raw.Bias != nil {
		c.Bias = *raw.Bias
	}
	if raw.BaseModelNameOrPath != nil {
		c.BaseModelNameOrPath = *raw.BaseModelNameOrPath
	}
	if len(raw.RankPattern) > 0 {
		if err := c.RankPattern.UnmarshalJSON(raw.RankPattern); err != nil {
			return nil, fmt.Errorf("rank_pattern: %w", err)
		}
	}
	if len(raw.AlphaPattern) > 0 {
		if err := c.AlphaPattern.UnmarshalJSON(raw.AlphaPattern); err != nil {
			return nil, fmt.Errorf("alpha_pattern: %w", err)
		}
	}
	if err := decodeTargetModules(raw.TargetModules, c); err != nil {
		return nil, err
	}
	if len(raw.InitLoraWeights) > 0 && string(raw.InitLoraWeights) != "null" {
		if err := json.Unmarshal(raw.InitLoraWeights, &c.InitLoraWeights); err != nil {
			if err := json.Unmarshal(raw.InitLoraWeights, &c.InitLoraWeightsMethod); err != nil {
				return nil, fmt.Errorf("init_lora_weights: want a boolean or a method name, got %s", raw.InitLoraWeights)
			}
			c.InitLoraWeights = false
		}
	}
	if len(raw.ModulesToSave) > 0 && string(raw.ModulesToSave) != "null" {
		if err := json.Unmarshal(raw.ModulesToSave, &c.ModulesToSave); err != nil {
			return nil, fmt.Errorf("modules_to_save: want null or a list of module names, got %s", raw.ModulesToSave)
		}
	}
	if raw.LoraBias {
		return nil, errors.New("lora_bias: true is not supported (bidora adapters have no bias on lora_B)")
	}
	if isSet(raw.LayerReplication) {
		return nil, fmt.Errorf("layer_replication: %s is not supported; want null", raw.LayerReplication)
	}
	if isSet(raw.TargetParameters) {
		return nil, fmt.Errorf("target_parameters: %s is not supported; want null", raw.TargetParameters)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// isSet reports whether a raw JSON value is present and not null or empty.
func isSet(v json.RawMessage) bool {
	s := string(bytes.TrimSpace(v))
	return s != "" && s != "null" && s != "[]" && s != "{}"
}

// AllLinear is PEFT's target_modules shorthand for every linear layer but the
// output head; for the supported decoders it means the seven projections.
const AllLinear = "all-linear"

func decodeTargetModules(v json.RawMessage, c *Config) error {
	if len(v) == 0 || string(v) == "null" {
		return errors.New("target_modules is missing; want a list of module names such as [\"q_proj\", \"v_proj\"]")
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		if s == AllLinear {
			c.TargetModules = slices.Clone(modelcfg.Projections)
			return nil
		}
		return fmt.Errorf("target_modules: the regular expression %q is not supported yet; give a list of module names such as [\"q_proj\", \"v_proj\"] or %q", s, AllLinear)
	}
	if err := json.Unmarshal(v, &c.TargetModules); err != nil {
		return fmt.Errorf("target_modules: want a list of module names, got %s", v)
	}
	return nil
}

// Validate checks the fields bidora relies on.
func (c *Config) Validate() error {
	switch {
	case c.PeftType != "LORA":
		return fmt.Errorf("peft_type %q is not supported; want \"LORA\"", c.PeftType)
	case c.TaskType != "" && c.TaskType != "CAUSAL_LM":
		return fmt.Errorf("task_type %q is not supported; want \"CAUSAL_LM\"", c.TaskType)
	case c.R <= 0:
		return fmt.Errorf("r must be a positive integer, got %d", c.R)
	case c.LoraAlpha <= 0 || math.IsInf(c.LoraAlpha, 0) || math.IsNaN(c.LoraAlpha):
		return fmt.Errorf("lora_alpha must be positive, got %v", c.LoraAlpha)
	case !(c.LoraDropout >= 0 && c.LoraDropout < 1):
		return fmt.Errorf("lora_dropout must be in [0, 1), got %v", c.LoraDropout)
	case len(c.TargetModules) == 0:
		return errors.New("target_modules is empty; want module names such as \"q_proj\"")
	case c.Bias != "none":
		return fmt.Errorf("bias %q is not supported; want \"none\"", c.Bias)
	case c.FanInFanOut:
		return errors.New("fan_in_fan_out: true is not supported; want false")
	case len(c.ModulesToSave) > 0:
		return fmt.Errorf("modules_to_save %v is not supported; want null (bidora trains adapters only)", c.ModulesToSave)
	}
	for _, t := range c.TargetModules {
		if t == "" {
			return errors.New("target_modules contains an empty name")
		}
	}
	for _, p := range []struct {
		field string
		ps    Patterns
	}{{"rank_pattern", c.RankPattern}, {"alpha_pattern", c.AlphaPattern}} {
		for _, e := range p.ps {
			if _, err := compilePattern(e.Key); err != nil {
				return fmt.Errorf("%s key %q is not a regular expression bidora can use: %w", p.field, e.Key, err)
			}
			if p.field == "rank_pattern" && (e.Value <= 0 || e.Value != math.Trunc(e.Value) || e.Value > math.MaxInt32) {
				return fmt.Errorf("rank_pattern[%q] = %v; want a positive integer no larger than %d", e.Key, e.Value, math.MaxInt32)
			}
			if p.field == "alpha_pattern" && !(e.Value > 0) {
				return fmt.Errorf("alpha_pattern[%q] = %v; want a positive number", e.Key, e.Value)
			}
		}
	}
	return nil
}

// MarshalJSON writes exactly the adapter_config.json keys bidora writes,
// sorted and indented as PEFT writes them.
func (c *Config) MarshalJSON() ([]byte, error) {
	var init any = c.InitLoraWeights
	if c.InitLoraWeightsMethod != "" {
		init = c.InitLoraWeightsMethod
	}
	var toSave any // null
	if len(c.ModulesToSave) > 0 {
		toSave = c.ModulesToSave
	}
	rank, alpha := c.RankPattern, c.AlphaPattern
	if rank == nil {
		rank = Patterns{}
	}
	if alpha == nil {
		alpha = Patterns{}
	}
	targets := c.TargetModules
	if targets == nil {
		targets = []string{}
	}
	m := map[string]any{
		"peft_type": c.PeftType, "task_type": c.TaskType, "r": c.R, "lora_alpha": c.LoraAlpha,
		"lora_dropout": c.LoraDropout, "target_modules": targets, "use_dora": c.UseDora,
		"use_rslora": c.UseRslora, "bias": c.Bias, "fan_in_fan_out": c.FanInFanOut,
		"init_lora_weights": init, "base_model_name_or_path": c.BaseModelNameOrPath,
		"inference_mode": c.InferenceMode, "rank_pattern": rank, "alpha_pattern": alpha,
		"modules_to_save": toSave,
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// ReadConfig reads dir/adapter_config.json (dir may also be the file itself).
func ReadConfig(dir string) (*Config, error) {
	path := dir
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		path = filepath.Join(dir, ConfigFileName)
	}
	data, err := metafile.Read(path, metafile.MaxJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("reading adapter config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Write validates c and writes dir/adapter_config.json atomically.
func (c *Config) Write(dir string) error {
	path := filepath.Join(dir, ConfigFileName)
	data, err := c.encode()
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, data)
}

// encode validates c and returns adapter_config.json's bytes, indented as
// PEFT writes them.
func (c *Config) encode() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, data, "", "  "); err != nil {
		return nil, err
	}
	indented.WriteByte('\n')
	return indented.Bytes(), nil
}
