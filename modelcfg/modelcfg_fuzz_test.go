package modelcfg

import (
	"bytes"
	"encoding/json"
	"github.com/bidora/bidora/internal/testutil"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse as config.json. A config that is
// accepted must validate again, give positive projection shapes, and survive
// a round trip: written back as JSON and parsed, it is the same config.
// Parsing must not allocate far more than the input holds.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		llama32,
		`{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":10,"eos_token_id":[1,2],"tie_word_embeddings":true}`,
		`{"model_type":"mistral","hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":5,"sliding_window":4096,"rope_scaling":{"type":"linear","factor":2}}`,
		`{"model_type":"qwen2","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":3,"sliding_window":16,"use_sliding_window":true,"rms_norm_eps":null,"eos_token_id":null}`,
		`{"model_type":"llama","hidden_size":0}`,
		`{"model_type":"gpt2"}`,
		`{"eos_token_id":"x"}`,
		`[]`,
		`{`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c *Config
		var err error
		if n := testutil.AllocBytes(func() { c, err = Parse(data) }); n > 64*uint64(len(data))+1<<20 {
			t.Fatalf("Parse of %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config and an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		for _, p := range Projections {
			out, in, ok := c.ProjShape(p)
			if !ok || out <= 0 || in <= 0 {
				t.Fatalf("accepted config gives %s shape [%d, %d] (%v)", p, out, in, ok)
			}
		}
		again, err := Parse(configJSON(t, c))
		if err != nil {
			t.Fatalf("re-parsing the written config: %v\n%s", err, configJSON(t, c))
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", again, c)
		}
	})
}

// configJSON writes c back as a config.json that Parse reads as c.
func configJSON(t *testing.T, c *Config) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep large integers exact
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["eos_token_id"] = c.EOSTokenIDs
	m["sliding_window"] = c.SlidingWindow
	m["use_sliding_window"] = c.SlidingWindow != 0
	b, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
