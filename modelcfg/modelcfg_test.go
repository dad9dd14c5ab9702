package modelcfg

import (
	"strings"
	"testing"
)

func TestCode14m(t *testing.T) {
	c, err := Load("../../shared/models/code14m")
	if err != nil {
		t.Skipf("shared model absent: %v", err)
	}
	if c.HeadDim != 48 || c.NumKeyValueHeads != 2 || !c.TieWordEmbeddings || c.RMSNormEps != 1e-5 {
		t.Fatalf("unexpected config %+v", c)
	}
	// README: 14.5M parameters.
	if n := c.NumParams(); n < 14_400_000 || n > 14_600_000 {
		t.Fatalf("NumParams = %d, want about 14.5M", n)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{`, "not valid JSON"},
		{`{"model_type":"gpt2"}`, "supported: llama, qwen2, mistral"},
		{`{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3,"vocab_size":10}`, "must divide"},
		{`{"model_type":"llama","hidden_size":0,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":10}`, "hidden_size must be"},
		{`{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":4,"vocab_size":10,"hidden_act":"gelu"}`, "hidden_act"},
		{`{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":10,"eos_token_id":"x"}`, "eos_token_id"},
	} {
		_, err := Parse([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want error containing %q", tc.json, err, tc.want)
		}
	}
}

func TestQwen2Defaults(t *testing.T) {
	c, err := Parse([]byte(`{"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,"num_hidden_layers":24,
	"num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,"tie_word_embeddings":true,"eos_token_id":[151645,151643],
	"sliding_window":32768,"use_sliding_window":false}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.QKVBias() || c.HeadDim != 64 || c.SlidingWindow != 0 || len(c.EOSTokenIDs) != 2 {
		t.Fatalf("%+v", c)
	}
	// Qwen2.5-0.5B has 494M parameters (494,032,768 per its model card).
	if n := c.NumParams(); n != 494032768 {
		t.Fatalf("NumParams = %d, want 494032768", n)
	}
}
