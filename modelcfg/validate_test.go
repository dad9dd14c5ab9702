package modelcfg

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// llama32 is the config.json of meta-llama/Llama-3.2-1B (as published).
const llama32 = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}`

func TestLlama32(t *testing.T) {
	c, err := Parse([]byte(llama32))
	if err != nil {
		t.Fatal(err)
	}
	want := RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
	if c.RopeScaling == nil || *c.RopeScaling != want {
		t.Fatalf("RopeScaling = %+v, want %+v", c.RopeScaling, want)
	}
	if c.RopeTheta != 500000 || c.HeadDim != 64 || c.NumKeyValueHeads != 8 || c.RMSNormEps != 1e-5 ||
		c.BOSTokenID == nil || *c.BOSTokenID != 128000 || len(c.EOSTokenIDs) != 1 || c.EOSTokenIDs[0] != 128001 ||
		!c.TieWordEmbeddings || c.QKVBias() || c.SlidingWindow != 0 || c.TorchDtype != "bfloat16" {
		t.Fatalf("%+v", c)
	}
	// Llama-3.2-1B has 1.24B parameters (1,235,814,400 with tied embeddings).
	if n := c.NumParams(); n != 1235814400 {
		t.Errorf("NumParams = %d, want 1235814400", n)
	}
	if o, i, ok := c.ProjShape("k_proj"); !ok || o != 512 || i != 2048 {
		t.Errorf("ProjShape(k_proj) = %d, %d, %v", o, i, ok)
	}
	if _, _, ok := c.ProjShape("lm_head"); ok {
		t.Error("ProjShape(lm_head) ok")
	}
}

func TestRopeScalingLegacyType(t *testing.T) {
	c, err := Parse([]byte(`{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
	"num_attention_heads":4,"vocab_size":10,"rope_scaling":{"type":"linear","factor":2.0}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.RopeScaling.Type != "linear" || c.RopeScaling.Factor != 2 {
		t.Fatalf("RopeScaling = %+v", c.RopeScaling)
	}
}

func TestSlidingWindow(t *testing.T) {
	base := `"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":10`
	for _, tc := range []struct {
		name, json string
		want       int
	}{
		{"mistral 7b v0.1", `{"model_type":"mistral",` + base + `,"sliding_window":4096}`, 4096},
		{"mistral v0.3 null", `{"model_type":"mistral",` + base + `,"sliding_window":null}`, 0},
		{"mistral absent: transformers' default", `{"model_type":"mistral",` + base + `}`, 4096},
		{"qwen2 disabled", `{"model_type":"qwen2",` + base + `,"sliding_window":4096,"use_sliding_window":false}`, 0},
		{"qwen2 enabled", `{"model_type":"qwen2",` + base + `,"sliding_window":4096,"use_sliding_window":true}`, 4096},
		{"llama ignores", `{"model_type":"llama",` + base + `,"sliding_window":4096}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if c.SlidingWindow != tc.want {
				t.Fatalf("SlidingWindow = %d, want %d", c.SlidingWindow, tc.want)
			}
		})
	}
}

// TestValidationErrors reaches every error Validate can return, each from a
// valid config with one field changed.
func TestValidationErrors(t *testing.T) {
	valid := map[string]any{
		"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 10,
	}
	if _, err := Parse(mustJSON(t, valid)); err != nil {
		t.Fatalf("base config: %v", err)
	}
	llama3 := func(f, lo, hi float64, orig int) map[string]any {
		return map[string]any{"rope_type": "llama3", "factor": f, "low_freq_factor": lo, "high_freq_factor": hi, "original_max_position_embeddings": orig}
	}
	for _, tc := range []struct {
		name string
		set  map[string]any
		want string
	}{
		{"model_type", map[string]any{"model_type": "gemma"}, `model_type "gemma" is not supported; supported: llama, qwen2, mistral`},
		{"missing model_type", map[string]any{"model_type": nil}, `model_type "" is not supported`},
		{"hidden_size", map[string]any{"hidden_size": -64}, "hidden_size must be a positive integer, got -64"},
		{"intermediate_size", map[string]any{"intermediate_size": 0}, "intermediate_size must be a positive integer, got 0"},
		{"num_hidden_layers", map[string]any{"num_hidden_layers": 0}, "num_hidden_layers must be a positive integer"},
		{"num_attention_heads", map[string]any{"num_attention_heads": 0}, "num_attention_heads must be a positive integer"},
		{"num_key_value_heads", map[string]any{"num_key_value_heads": -2}, "num_key_value_heads must be a positive integer"},
		{"head_dim", map[string]any{"head_dim": -8}, "head_dim must be a positive integer"},
		{"vocab_size", map[string]any{"vocab_size": 0}, "vocab_size must be a positive integer"},
		{"kv heads divide", map[string]any{"num_key_value_heads": 3}, "num_key_value_heads (3) must divide num_attention_heads (4)"},
		{"odd head_dim", map[string]any{"head_dim": 15}, "head_dim must be even for rotary embeddings, got 15"},
		{"odd derived head_dim", map[string]any{"hidden_size": 12}, "head_dim must be even for rotary embeddings, got 3"},
		{"hidden_act", map[string]any{"hidden_act": "gelu_pytorch_tanh"}, `hidden_act "gelu_pytorch_tanh" is not supported; want silu`},
		{"rms_norm_eps zero", map[string]any{"rms_norm_eps": 0}, "rms_norm_eps must be positive, got 0"},
		{"rms_norm_eps negative", map[string]any{"rms_norm_eps": -1e-6}, "rms_norm_eps must be positive"},
		{"llama3 factor", map[string]any{"rope_scaling": llama3(0, 1, 4, 8192)}, "rope_scaling llama3 needs"},
		{"llama3 low", map[string]any{"rope_scaling": llama3(8, 0, 4, 8192)}, "rope_scaling llama3 needs"},
		{"llama3 high <= low", map[string]any{"rope_scaling": llama3(8, 4, 4, 8192)}, "rope_scaling llama3 needs"},
		{"llama3 original", map[string]any{"rope_scaling": llama3(8, 1, 4, -1)}, "rope_scaling llama3 needs"},
		{"linear factor", map[string]any{"rope_scaling": map[string]any{"type": "linear", "factor": 0}}, "rope_scaling linear needs factor > 0"},
		{"rope type", map[string]any{"rope_scaling": map[string]any{"rope_type": "yarn", "factor": 4}}, `rope_scaling type "yarn" is not supported; supported: llama3, linear, default`},
		{"eos list of strings", map[string]any{"eos_token_id": []string{"a"}}, "eos_token_id: want an integer or a list of integers"},
		{"wrong JSON type", map[string]any{"hidden_size": "64"}, "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := maps.Clone(valid)
			for k, v := range tc.set {
				if v == nil {
					delete(cfg, k)
				} else {
					cfg[k] = v
				}
			}
			_, err := Parse(mustJSON(t, cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want error containing %q", err, tc.want)
			}
		})
	}
	// Default and linear scaling are accepted.
	for _, rs := range []map[string]any{{"rope_type": "default"}, {"type": "linear", "factor": 4}, llama3(8, 1, 4, 8192)} {
		cfg := maps.Clone(valid)
		cfg["rope_scaling"] = rs
		if _, err := Parse(mustJSON(t, cfg)); err != nil {
			t.Errorf("rope_scaling %v: %v", rs, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("Load(empty dir) = %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
