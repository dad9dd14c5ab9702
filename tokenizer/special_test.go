package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sharedEOSToken reads eos_token (a string or an AddedToken object) from a shared
// tokenizer's tokenizer_config.json.
func sharedEOSToken(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		EOS json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	var s string
	if json.Unmarshal(cfg.EOS, &s) == nil {
		return s
	}
	var obj struct{ Content string }
	if err := json.Unmarshal(cfg.EOS, &obj); err != nil {
		t.Fatalf("eos_token %s: %v", cfg.EOS, err)
	}
	return obj.Content
}

func TestResolveSpecialShared(t *testing.T) {
	loaded := map[string]*Tokenizer{}
	for _, tc := range []struct {
		name      string
		cfg       SpecialConfig // EOSToken filled from tokenizer_config.json
		bos       []int
		eos       int
		endOfTurn []int
	}{
		// Qwen3: eos_token <|im_end|>; <|endoftext|> also ends a turn; no BOS.
		{"qwen3", SpecialConfig{}, nil, 151645, []int{151643, 151645}},
		// A Qwen base model's config.json names <|endoftext|>: the tokenizer's eos_token
		// still wins for training, both end a turn.
		{"qwen3", SpecialConfig{EOSTokenIDs: []int{151643}}, nil, 151645, []int{151643, 151645}},
		// Llama 3: <|end_of_text|> and the chat template's <|eot_id|>; this
		// tokenizer.json's post-processor adds no <|begin_of_text|>.
		{"llama3", SpecialConfig{}, nil, 128001, []int{128001, 128009}},
		// Llama 3 Instruct's config.json lists eos ids [128001, 128008, 128009].
		{"llama3", SpecialConfig{EOSTokenIDs: []int{128001, 128008, 128009}}, nil, 128001, []int{128001, 128008, 128009}},
		// Llama 2: <s> before a text, </s> ends it.
		{"llama2", SpecialConfig{}, []int{1}, 2, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(sharedDir, "tokenizers", tc.name)
			if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
				t.Skipf("shared tokenizer %s absent", tc.name)
			}
			tok := loaded[tc.name]
			if tok == nil {
				var err error
				if tok, err = Load(dir); err != nil {
					t.Fatal(err)
				}
				loaded[tc.name] = tok
			}
			tc.cfg.EOSToken = sharedEOSToken(t, dir)
			sp, err := tok.ResolveSpecial(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sp.BOS, tc.bos) || sp.EOS != tc.eos || !slices.Equal(sp.EndOfTurn, tc.endOfTurn) {
				t.Errorf("got BOS %v EOS %d end of turn %v, want %v %d %v", sp.BOS, sp.EOS, sp.EndOfTurn, tc.bos, tc.eos, tc.endOfTurn)
			}
			// BOS is what EncodeWithSpecial puts before Encode's ids.
			if plain, with := tok.Encode("hello"), tok.EncodeWithSpecial("hello"); !slices.Equal(with, slices.Concat(sp.BOS, plain)) {
				t.Errorf("EncodeWithSpecial %v is not BOS %v + Encode %v", with, sp.BOS, plain)
			}
		})
	}
}

func TestResolveSpecialFallbacks(t *testing.T) {
	tok, err := Parse([]byte(tinyJSON)) // added token <eos> = 9; post-processor appends it
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  SpecialConfig
		eos  int
		eot  []int
		err  string
	}{
		{"eos_token", SpecialConfig{EOSToken: "<eos>", EOSTokenIDs: []int{4}}, 9, []int{4, 9}, ""},
		{"unknown eos_token falls back to config.json", SpecialConfig{EOSToken: "<nope>", EOSTokenIDs: []int{7, 8}}, 7, []int{7, 8}, ""},
		{"generation_config.json last", SpecialConfig{GenerationEOSTokenIDs: []int{5}}, 5, []int{5}, ""},
		{"none", SpecialConfig{}, 0, nil, "neither tokenizer_config.json eos_token nor config.json eos_token_id"},
		{"unknown and none", SpecialConfig{EOSToken: "<nope>"}, 0, nil, `eos_token "<nope>" is not in tokenizer.json`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := tok.ResolveSpecial(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				// What there is still comes back, for generation without an EOS.
				if sp.EOS != -1 || sp.EndOfTurn != nil {
					t.Fatalf("without an EOS: %+v", sp)
				}
				return
			}
			if err != nil || sp.EOS != tc.eos || !slices.Equal(sp.EndOfTurn, tc.eot) || sp.BOS != nil {
				t.Fatalf("got %+v, %v; want EOS %d end of turn %v, no BOS (the post-processor only appends)", sp, err, tc.eos, tc.eot)
			}
		})
	}
}
