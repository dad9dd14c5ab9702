package modelcfg

import (
	"errors"
	"strings"
	"testing"
)

const shape = `"hidden_size":64,"intermediate_size":128,"num_hidden_layers":3,"num_attention_heads":4,"vocab_size":10`
const shapeKV = shape + `,"num_key_value_heads":4`

func mustParse(t *testing.T, js string) *Config {
	t.Helper()
	c, err := Parse([]byte(js))
	if err != nil {
		t.Fatalf("Parse(%s): %v", js, err)
	}
	return c
}

// TestBiasesAsTransformers: Qwen2 always has q/k/v biases and never an o_proj
// bias, Mistral none, whatever attention_bias and mlp_bias say; Llama follows them.
func TestBiasesAsTransformers(t *testing.T) {
	for _, tc := range []struct {
		arch, extra   string
		qkv, o, mlp   bool
		extraParamsPL int // parameters per layer beyond the weights and norms
	}{
		{"qwen2", ``, true, false, false, 64 + 2*64},
		{"qwen2", `,"attention_bias":true,"mlp_bias":true`, true, false, false, 64 + 2*64},
		{"qwen2", `,"attention_bias":false`, true, false, false, 64 + 2*64},
		{"mistral", `,"attention_bias":true,"mlp_bias":true`, false, false, false, 0},
		{"llama", ``, false, false, false, 0},
		{"llama", `,"attention_bias":true`, true, true, false, 3*64 + 64},
		{"llama", `,"mlp_bias":true`, false, false, true, 2*128 + 64},
	} {
		c := mustParse(t, `{"model_type":"`+tc.arch+`",`+shape+`,"num_key_value_heads":4`+tc.extra+`}`)
		if c.QKVBias() != tc.qkv || c.OBias() != tc.o || c.MLPBiases() != tc.mlp {
			t.Errorf("%s%s: qkv %v o %v mlp %v, want %v %v %v", tc.arch, tc.extra, c.QKVBias(), c.OBias(), c.MLPBiases(), tc.qkv, tc.o, tc.mlp)
		}
		plain := *c
		plain.ModelType, plain.AttentionBias, plain.MLPBias = "llama", false, false
		if got := c.NumParams() - plain.NumParams(); got != int64(3*tc.extraParamsPL) {
			t.Errorf("%s%s: biases add %d parameters, want %d", tc.arch, tc.extra, got, 3*tc.extraParamsPL)
		}
		if got := c.ParamCount() - plain.ParamCount(); got != float64(3*tc.extraParamsPL) {
			t.Errorf("%s%s: ParamCount biases %g, want %d", tc.arch, tc.extra, got, 3*tc.extraParamsPL)
		}
	}
	// Programmatic configs get the same answer without Parse's normalisation.
	q := Config{ModelType: "qwen2", AttentionBias: true, MLPBias: true}
	if !q.QKVBias() || q.OBias() || q.MLPBiases() {
		t.Errorf("programmatic qwen2 with attention_bias: qkv %v o %v mlp %v", q.QKVBias(), q.OBias(), q.MLPBiases())
	}
}

// TestKVHeadsDefaults: an absent num_key_value_heads takes the class default
// (Llama: num_attention_heads, Qwen2: 32, Mistral: 8); null means
// num_attention_heads.
func TestKVHeadsDefaults(t *testing.T) {
	big := `"hidden_size":2048,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":64,"vocab_size":10`
	for _, tc := range []struct {
		js   string
		want int
	}{
		{`{"model_type":"llama",` + big + `}`, 64},
		{`{"model_type":"qwen2",` + big + `}`, 32},
		{`{"model_type":"mistral",` + big + `}`, 8},
		{`{"model_type":"qwen2",` + big + `,"num_key_value_heads":null}`, 64},
		{`{"model_type":"mistral",` + big + `,"num_key_value_heads":null}`, 64},
		{`{"model_type":"mistral",` + big + `,"num_key_value_heads":16}`, 16},
	} {
		if c := mustParse(t, tc.js); c.NumKeyValueHeads != tc.want {
			t.Errorf("%s: num_key_value_heads %d, want %d", tc.js, c.NumKeyValueHeads, tc.want)
		}
	}
	for _, js := range []string{`{"model_type":"llama",` + big + `,"num_key_value_heads":0}`, `{"model_type":"llama",` + big + `,"num_key_value_heads":"8"}`} {
		_, err := Parse([]byte(js))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "num_key_value_heads" {
			t.Errorf("%s: %v, want a FieldError for num_key_value_heads", js, err)
		}
	}
}

// TestWindowPerLayer: Qwen2 slides only with use_sliding_window, in the layers
// from max_window_layers on (or as layer_types says); Mistral in every layer.
func TestWindowPerLayer(t *testing.T) {
	for _, tc := range []struct {
		name, js string
		want     [3]int
	}{
		{"mistral", `{"model_type":"mistral",` + shapeKV + `,"sliding_window":5}`, [3]int{5, 5, 5}},
		{"mistral null", `{"model_type":"mistral",` + shapeKV + `,"sliding_window":null}`, [3]int{}},
		{"mistral ignores layer_types", `{"model_type":"mistral",` + shapeKV + `,"sliding_window":5,"layer_types":["full_attention","full_attention","x"]}`, [3]int{5, 5, 5}},
		{"qwen2 off", `{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"sliding_window":5,"max_window_layers":0}`, [3]int{}},
		{"qwen2 on, default max_window_layers 28", `{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"sliding_window":5,"use_sliding_window":true}`, [3]int{}},
		{"qwen2 on from layer 1", `{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"sliding_window":5,"use_sliding_window":true,"max_window_layers":1}`, [3]int{0, 5, 5}},
		{"qwen2 on, absent window is 4096", `{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"use_sliding_window":true,"max_window_layers":0}`, [3]int{4096, 4096, 4096}},
		{"qwen2 on, null window", `{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"sliding_window":null,"use_sliding_window":true,"max_window_layers":0}`, [3]int{}},
		{"qwen2 layer_types", `{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"sliding_window":5,"use_sliding_window":true,"max_window_layers":0,
			"layer_types":["sliding_attention","full_attention","sliding_attention"]}`, [3]int{5, 0, 5}},
		{"qwen2 layer_types, window off", `{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"sliding_window":5,
			"layer_types":["sliding_attention","full_attention","sliding_attention"]}`, [3]int{}},
		{"llama ignores", `{"model_type":"llama",` + shape + `,"sliding_window":5,"use_sliding_window":true,"max_window_layers":0}`, [3]int{}},
	} {
		c := mustParse(t, tc.js)
		for l, w := range tc.want {
			if got := c.Window(l); got != w {
				t.Errorf("%s: Window(%d) = %d, want %d", tc.name, l, got, w)
			}
		}
	}
	for _, tc := range []struct{ js, field, want string }{
		{`{"model_type":"mistral",` + shapeKV + `,"sliding_window":0}`, "sliding_window", "sliding_window must be a positive integer or null, got 0"},
		{`{"model_type":"mistral",` + shapeKV + `,"sliding_window":-4}`, "sliding_window", "got -4"},
		{`{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"use_sliding_window":true,"sliding_window":0}`, "sliding_window", "positive integer or null"},
		{`{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"layer_types":["full_attention"]}`, "layer_types", "layer_types has 1 entries; want one per layer (num_hidden_layers = 3)"},
		{`{"model_type":"qwen2",` + shape + `,"num_key_value_heads":4,"layer_types":["full_attention","chunked_attention","full_attention"]}`, "layer_types", `layer_types[1] is "chunked_attention"`},
	} {
		_, err := Parse([]byte(tc.js))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a FieldError for %s containing %q", tc.js, err, tc.field, tc.want)
		}
	}
}

// TestRopeParameters: transformers 5 writes rope_parameters (rope_theta inside);
// older files write rope_theta and rope_scaling. Both read the same.
func TestRopeParameters(t *testing.T) {
	base := `"model_type":"llama",` + shape + `,"max_position_embeddings":4096`
	for _, tc := range []struct {
		name, js string
		theta    float64
		rs       *RopeScaling
	}{
		{"v5 default", `{` + base + `,"rope_parameters":{"rope_theta":500000.0,"rope_type":"default"}}`, 500000, nil},
		{"v5 theta from top level", `{` + base + `,"rope_theta":20000,"rope_parameters":{"rope_type":"linear","factor":2}}`, 20000, &RopeScaling{Type: "linear", Factor: 2}},
		{"v5 inner theta wins", `{` + base + `,"rope_theta":20000,"rope_parameters":{"rope_theta":30000}}`, 30000, nil},
		{"v5 llama3 original defaults to max positions", `{` + base + `,"rope_parameters":{"rope_theta":500000,"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4}}`, 500000,
			&RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 4096}},
		{"rope_scaling wins over rope_parameters", `{` + base + `,"rope_scaling":{"type":"linear","factor":3},"rope_parameters":{"rope_type":"linear","factor":5}}`, 10000, &RopeScaling{Type: "linear", LegacyType: "linear", Factor: 3}},
		{"empty rope_scaling falls back", `{` + base + `,"rope_scaling":{},"rope_parameters":{"rope_type":"linear","factor":5}}`, 10000, &RopeScaling{Type: "linear", Factor: 5}},
		{"partial_rotary_factor 1", `{` + base + `,"partial_rotary_factor":1.0}`, 10000, nil},
	} {
		c := mustParse(t, tc.js)
		if c.RopeTheta != tc.theta || (c.RopeScaling == nil) != (tc.rs == nil) || (tc.rs != nil && *c.RopeScaling != *tc.rs) {
			t.Errorf("%s: theta %g scaling %+v, want %g %+v", tc.name, c.RopeTheta, c.RopeScaling, tc.theta, tc.rs)
		}
	}
	for _, tc := range []struct{ js, field, want string }{
		{`{` + base + `,"rope_parameters":{"rope_type":"yarn","factor":4,"original_max_position_embeddings":1024}}`, "rope_parameters", `rope_parameters type "yarn" is not supported`},
		{`{` + base + `,"rope_parameters":{"rope_type":"dynamic","factor":2}}`, "rope_parameters", `"dynamic" is not supported`},
		{`{` + base + `,"rope_scaling":{"rope_type":"longrope","factor":2}}`, "rope_scaling", `rope_scaling type "longrope" is not supported`},
		{`{` + base + `,"rope_parameters":{"rope_theta":0}}`, "rope_theta", "rope_theta must be a positive number, got 0"},
		{`{` + base + `,"partial_rotary_factor":0.5}`, "partial_rotary_factor", "partial_rotary_factor 0.5 is not supported"},
		{`{` + base + `,"rope_parameters":{"rope_theta":1e4,"partial_rotary_factor":0.25}}`, "partial_rotary_factor", "0.25"},
		{`{` + base + `,"attention_dropout":0.1}`, "attention_dropout", "attention_dropout 0.1 is not supported"},
	} {
		_, err := Parse([]byte(tc.js))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a FieldError for %s containing %q", tc.js, err, tc.field, tc.want)
		}
	}
	if c := mustParse(t, `{`+base+`,"hidden_act":"swish","attention_dropout":0.0}`); c.HiddenAct != "silu" {
		t.Errorf("swish: hidden_act %q, want silu (the same function)", c.HiddenAct)
	}
}

func TestValidateWindow(t *testing.T) {
	base := Config{ModelType: "mistral", HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 2, NumAttentionHeads: 4,
		NumKeyValueHeads: 2, HeadDim: 16, VocabSize: 10, RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu"}
	for _, tc := range []struct {
		edit  func(*Config)
		field string
	}{
		{func(c *Config) { c.SlidingWindow = 8 }, ""},
		{func(c *Config) { c.SlidingWindow = -1 }, "sliding_window"},
		{func(c *Config) { c.SlidingWindow, c.LayerTypes = 8, []string{slidingAttention} }, "layer_types"},
	} {
		c := base
		tc.edit(&c)
		err := c.Validate()
		var fe *FieldError
		if (tc.field == "") != (err == nil) || (err != nil && (!errors.As(err, &fe) || fe.Field != tc.field)) {
			t.Errorf("%+v: %v, want field %q", c, err, tc.field)
		}
	}
}
