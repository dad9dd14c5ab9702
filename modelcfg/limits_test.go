package modelcfg

import (
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSizeAndRopeLimits: values that used to load (and then hang generation or
// overflow the parameter count) are refused with the field named.
func TestSizeAndRopeLimits(t *testing.T) {
	valid := map[string]any{
		"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 10,
	}
	cases := []struct {
		name  string
		set   map[string]any
		field string // FieldError.Field, "-" for no error
		want  string
	}{
		{"rope_theta 0", map[string]any{"rope_theta": 0}, "rope_theta", "rope_theta must be a positive number, got 0"},
		{"rope_theta negative", map[string]any{"rope_theta": -10000.0}, "rope_theta", "rope_theta must be a positive number, got -10000"},
		{"max_position_embeddings 0", map[string]any{"max_position_embeddings": 0}, "max_position_embeddings", "max_position_embeddings must be a positive integer, got 0"},
		{"max_position_embeddings negative", map[string]any{"max_position_embeddings": -1}, "max_position_embeddings", "got -1"},
		{"max_position_embeddings huge", map[string]any{"max_position_embeddings": 1 << 40}, "max_position_embeddings", "more than the 1073741824 bidora accepts"},
		{"layers 2^62", map[string]any{"num_hidden_layers": int64(1) << 62}, "num_hidden_layers", "num_hidden_layers is 4611686018427387904, more than the 16384"},
		{"hidden huge", map[string]any{"hidden_size": int64(1) << 40}, "hidden_size", "hidden_size is 1099511627776"},
		{"vocab huge", map[string]any{"vocab_size": 1 << 27}, "vocab_size", "vocab_size is 134217728"},
		{"heads huge", map[string]any{"num_attention_heads": 1 << 15, "num_key_value_heads": 1}, "num_attention_heads", "more than the 16384"},
		{"too many parameters", map[string]any{"hidden_size": 1 << 20, "intermediate_size": 1 << 20, "num_hidden_layers": 1 << 14,
			"num_attention_heads": 1 << 10}, "", "parameters, more than the 1e+13 bidora accepts"},
		{"largest real shape", map[string]any{"hidden_size": 16384, "intermediate_size": 53248, "num_hidden_layers": 126,
			"num_attention_heads": 128, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072, "rope_theta": 500000.0}, "-", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := maps.Clone(valid)
			maps.Copy(cfg, c.set)
			got, err := Parse(mustJSON(t, cfg))
			if c.field == "-" {
				if err != nil {
					t.Fatal(err)
				}
				if n := got.NumParams(); n < 400e9 || n > 410e9 {
					t.Errorf("405B shape: NumParams %d", n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse = %v, want error containing %q", err, c.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("error %#v: want a *FieldError for %q", err, c.field)
			}
		})
	}
}

func TestDefaultsWhenAbsent(t *testing.T) {
	for _, c := range []struct {
		typ    string
		maxPos int
	}{{"llama", 2048}, {"qwen2", 32768}, {"mistral", 131072}} {
		got, err := Parse([]byte(`{"model_type":"` + c.typ + `","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":10}`))
		if err != nil {
			t.Fatal(err)
		}
		if got.MaxPositionEmbeddings != c.maxPos || got.RopeTheta != 10000 {
			t.Errorf("%s: max_position_embeddings %d rope_theta %g, want %d and 10000", c.typ, got.MaxPositionEmbeddings, got.RopeTheta, c.maxPos)
		}
	}
	// null means absent.
	got, err := Parse([]byte(`{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":10,"rope_theta":null,"max_position_embeddings":null}`))
	if err != nil || got.RopeTheta != 10000 || got.MaxPositionEmbeddings != 2048 {
		t.Errorf("nulls: %+v %v", got, err)
	}
}

func TestValidateProgrammatic(t *testing.T) {
	base := Config{ModelType: "llama", HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 2, NumAttentionHeads: 4,
		NumKeyValueHeads: 2, HeadDim: 16, VocabSize: 10, RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu"}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"unknown max positions is fine", func(c *Config) {}, ""},
		{"negative max positions", func(c *Config) { c.MaxPositionEmbeddings = -1 }, "max_position_embeddings must be a positive integer"},
		{"rope_theta 0", func(c *Config) { c.RopeTheta = 0 }, "rope_theta must be a positive number"},
		{"rope_theta NaN", func(c *Config) { c.RopeTheta = math.NaN() }, "rope_theta must be a positive number"},
		{"rope_theta Inf", func(c *Config) { c.RopeTheta = math.Inf(1) }, "rope_theta must be a positive number"},
		{"rms_norm_eps NaN", func(c *Config) { c.RMSNormEps = math.NaN() }, "rms_norm_eps must be positive"},
		{"linear factor Inf", func(c *Config) { c.RopeScaling = &RopeScaling{Type: "linear", Factor: math.Inf(1)} }, "rope_scaling linear needs"},
		{"layers 2^62", func(c *Config) { c.NumHiddenLayers = 1 << 62 }, "num_hidden_layers is"},
	}
	for _, c := range cases {
		cfg := base
		c.edit(&cfg)
		err := cfg.Validate()
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// NumParams saturates instead of wrapping around on absurd shapes.
	huge := base
	huge.NumHiddenLayers = 1 << 62
	if n := huge.NumParams(); n != math.MaxInt64 {
		t.Errorf("NumParams of 2^62 layers = %d, want MaxInt64", n)
	}
}

func TestLoadFileChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "config.json"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cases := []struct{ dir, want string }{
		{write("array", `[{"model_type": "llama"}]`), "config.json: want a JSON object, got an array"},
		{write("string", `"llama"`), "config.json: want a JSON object, got a string"},
		{write("big", `{"model_type": "llama", "x": "`+strings.Repeat("a", 16<<20)+`"}`), "config.json is larger than the 16 MiB allowed"},
	}
	for _, c := range cases {
		if _, err := Load(c.dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.dir, err, c.want)
		}
	}
	if _, err := Parse([]byte(`[1]`)); err == nil || strings.Contains(err.Error(), "Go value") {
		t.Errorf("array: %v", err)
	}
}
