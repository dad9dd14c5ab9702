package tinymodel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/safetensors"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"llama f32", Options{}},
		{"llama bf16 tied sharded", Options{DType: safetensors.BF16, Tied: true, Shards: 3, NumLayers: 3}},
		{"llama3 rope scaling", Options{RopeScaling: &modelcfg.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}, RopeTheta: 500000}},
		{"qwen2 f16 tied", Options{Arch: "qwen2", DType: safetensors.F16, Tied: true, NumHeads: 8, NumKVHeads: 2}},
		{"qwen2 sliding", Options{Arch: "qwen2", SlidingWindow: 256}},
		{"mistral sliding", Options{Arch: "mistral", SlidingWindow: 128, HiddenSize: 96, NumHeads: 6, NumKVHeads: 3, HeadDim: 32, IntermediateSize: 200}},
		{"odd vocab", Options{VocabSize: 333, Shards: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, tc.opts); err != nil {
				t.Fatal(err)
			}
			o, _ := tc.opts.withDefaults()
			cfg, err := modelcfg.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ModelType != o.Arch || cfg.HiddenSize != o.HiddenSize || cfg.NumHiddenLayers != o.NumLayers ||
				cfg.NumKeyValueHeads != o.NumKVHeads || cfg.HeadDim != o.HeadDim || cfg.TieWordEmbeddings != o.Tied ||
				cfg.IntermediateSize != o.IntermediateSize || cfg.RopeTheta != o.RopeTheta {
				t.Fatalf("config %+v does not match options %+v", cfg, o)
			}
			if cfg.QKVBias() != (o.Arch == "qwen2") || cfg.SlidingWindow != o.SlidingWindow {
				t.Errorf("QKVBias %v, SlidingWindow %d", cfg.QKVBias(), cfg.SlidingWindow)
			}
			if (cfg.RopeScaling == nil) != (o.RopeScaling == nil) || (cfg.RopeScaling != nil && *cfg.RopeScaling != *o.RopeScaling) {
				t.Errorf("rope_scaling %+v, want %+v", cfg.RopeScaling, o.RopeScaling)
			}
			if want := map[safetensors.DType]string{"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[o.DType]; cfg.TorchDtype != want {
				t.Errorf("torch_dtype %q, want %q", cfg.TorchDtype, want)
			}
			if tc.opts.VocabSize != 0 && cfg.VocabSize != tc.opts.VocabSize || cfg.VocabSize < 306 {
				t.Errorf("vocab_size %d", cfg.VocabSize)
			}
			if len(cfg.EOSTokenIDs) != 1 || cfg.EOSTokenIDs[0] != 305 || cfg.BOSTokenID == nil || *cfg.BOSTokenID != 303 {
				t.Errorf("bos %v eos %v, want 303 and [305]", cfg.BOSTokenID, cfg.EOSTokenIDs)
			}
			for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
			_, indexErr := os.Stat(filepath.Join(dir, safetensors.IndexFileName))
			if (indexErr == nil) != (o.Shards > 1) {
				t.Errorf("index present = %v with %d shards", indexErr == nil, o.Shards)
			}

			m, err := safetensors.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if len(m.Files()) != o.Shards {
				t.Errorf("%d files, want %d", len(m.Files()), o.Shards)
			}
			names := TensorNames(cfg)
			if got, want := m.Names(), slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
				t.Fatalf("tensors %v\nwant %v", got, want)
			}
			var params int64
			for _, n := range names {
				info, _ := m.Info(n)
				if info.DType != o.DType {
					t.Fatalf("%s has dtype %s, want %s", n, info.DType, o.DType)
				}
				params += int64(info.NumElements())
			}
			if params != cfg.NumParams() {
				t.Errorf("%d parameters, config says %d", params, cfg.NumParams())
			}
			checkStats(t, m, "model.embed_tokens.weight", 0, 0.02)
			checkStats(t, m, "model.layers.0.mlp.down_proj.weight", 0, 0.02)
			checkStats(t, m, "model.norm.weight", 1, 0.1)
			if o.Arch == "qwen2" {
				checkStats(t, m, "model.layers.1.self_attn.k_proj.bias", 0, 0.1)
			}
		})
	}
}

// checkStats checks a tensor's mean and standard deviation loosely.
func checkStats(t *testing.T, m *safetensors.Model, name string, mean, std float64) {
	t.Helper()
	v, err := m.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	var s, s2 float64
	for _, x := range v {
		s += float64(x)
		s2 += float64(x) * float64(x)
	}
	n := float64(len(v))
	gotMean := s / n
	gotStd := math.Sqrt(s2/n - gotMean*gotMean)
	// 5 standard errors of the mean; the std within 35% (norm vectors are short).
	if math.Abs(gotMean-mean) > 5*std/math.Sqrt(n) || math.Abs(gotStd-std) > 0.35*std {
		t.Errorf("%s: mean %.4f std %.4f over %d values, want about %.4f and %.4f", name, gotMean, gotStd, len(v), mean, std)
	}
}

func TestDeterministic(t *testing.T) {
	base := t.TempDir()
	write := func(name string, o Options) string {
		dir := filepath.Join(base, name)
		if err := Write(dir, o); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a := write("a", Options{Seed: 7, DType: safetensors.BF16})
	b := write("b", Options{Seed: 7, DType: safetensors.BF16})
	c := write("c", Options{Seed: 8, DType: safetensors.BF16})
	s := write("s", Options{Seed: 7, DType: safetensors.BF16, Shards: 4})
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		da, _ := os.ReadFile(filepath.Join(a, f))
		db, _ := os.ReadFile(filepath.Join(b, f))
		if len(da) == 0 || !bytes.Equal(da, db) {
			t.Errorf("%s differs between two writes with the same seed", f)
		}
	}
	da, _ := os.ReadFile(filepath.Join(a, "model.safetensors"))
	dc, _ := os.ReadFile(filepath.Join(c, "model.safetensors"))
	if bytes.Equal(da, dc) {
		t.Error("seeds 7 and 8 gave the same weights")
	}
	ma, err := safetensors.OpenDir(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ma.Close()
	ms, err := safetensors.OpenDir(s)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	for _, n := range ma.Names() {
		x, _ := ma.Bytes(n)
		y, err := ms.Bytes(n)
		if err != nil || !bytes.Equal(x, y) {
			t.Fatalf("%s differs between 1 and 4 shards (%v)", n, err)
		}
	}
}

func TestCopyTokenizer(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "tokenizers")
	for _, tc := range []struct {
		name          string
		minVocab      int
		bos, eos      int
		wantBOSAbsent bool
	}{
		{"qwen3", 151669, 151643, 151645, false},
		{"llama3", 128256, 128000, 128001, false},
		{"llama2", 32000, 1, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(shared, tc.name)
			if _, err := os.Stat(src); err != nil {
				t.Skipf("shared tokenizer absent: %v", err)
			}
			dir := t.TempDir()
			if err := Write(dir, Options{TokenizerDir: src, HiddenSize: 16, NumHeads: 2, NumLayers: 1, IntermediateSize: 24, Tied: true, DType: safetensors.BF16}); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
				want, _ := os.ReadFile(filepath.Join(src, f))
				got, _ := os.ReadFile(filepath.Join(dir, f))
				if !bytes.Equal(got, want) {
					t.Errorf("%s was not copied verbatim", f)
				}
			}
			cfg, err := modelcfg.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.VocabSize < tc.minVocab || cfg.VocabSize%16 != 0 {
				t.Errorf("vocab_size %d, want ≥ %d and a multiple of 16", cfg.VocabSize, tc.minVocab)
			}
			if cfg.BOSTokenID == nil || *cfg.BOSTokenID != tc.bos || len(cfg.EOSTokenIDs) != 1 || cfg.EOSTokenIDs[0] != tc.eos {
				t.Errorf("bos %v eos %v, want %d %d", cfg.BOSTokenID, cfg.EOSTokenIDs, tc.bos, tc.eos)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Arch: "gpt2"}, `arch "gpt2" is not supported`},
		{Options{DType: safetensors.I8}, "dtype I8 is not supported"},
		{Options{VocabSize: 100}, "vocab_size 100 is smaller than the tokenizer's 306 tokens"},
		{Options{NumHeads: 4, NumKVHeads: 3}, "must divide"},
		{Options{Shards: 100}, "100 shards for"},
		{Options{Shards: -1}, "shards must be positive"},
		{Options{Arch: "qwen2", HeadDim: 32}, "qwen2 has no head_dim field"},
		{Options{TokenizerDir: "/nonexistent"}, "copying tokenizer"},
		{Options{RopeScaling: &modelcfg.RopeScaling{Type: "yarn", Factor: 2}}, `rope_scaling type "yarn"`},
	} {
		err := Write(t.TempDir(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Write(%+v) = %v, want error containing %q", tc.opts, err, tc.want)
		}
	}
}

// TestBuiltinTokenizerGolden pins the built-in tokenizer to the file that was
// checked with the HuggingFace tokenizers library (testdata/hf_encode.mjs),
// and checks that library's output against the vocabulary.
func TestBuiltinTokenizerGolden(t *testing.T) {
	tj, tc := BuiltinTokenizer()
	want, err := os.ReadFile("testdata/builtin_tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tj, want) {
		t.Fatal("BuiltinTokenizer changed: check it with testdata/hf_encode.mjs and update testdata/builtin_tokenizer.json and the golden")
	}
	var parsed struct {
		Model struct {
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(tj, &parsed); err != nil {
		t.Fatal(err)
	}
	byID := map[int]string{}
	for s, id := range parsed.Model.Vocab {
		byID[id] = s
	}
	for _, a := range parsed.AddedTokens {
		byID[a.ID] = a.Content
	}
	f, err := os.Open("testdata/builtin_tokenizer_golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	var head struct {
		VocabSize int `json:"vocab_size"`
	}
	if err := json.Unmarshal(sc.Bytes(), &head); err != nil || head.VocabSize != len(byID) {
		t.Fatalf("golden vocab_size %d, built-in has %d (%v)", head.VocabSize, len(byID), err)
	}
	lines := 0
	for sc.Scan() {
		var g struct {
			Text    string   `json:"text"`
			IDs     []int    `json:"ids"`
			Tokens  []string `json:"tokens"`
			Decoded string   `json:"decoded"`
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		for i, id := range g.IDs {
			if byID[id] != g.Tokens[i] {
				t.Errorf("%q: id %d is %q in the built-in vocab, HF says %q", g.Text, id, byID[id], g.Tokens[i])
			}
		}
		if g.Decoded != g.Text {
			t.Errorf("HF decoded %q as %q", g.Text, g.Decoded)
		}
		lines++
	}
	if lines < 5 {
		t.Errorf("golden has %d samples", lines)
	}
	var cfg map[string]any
	if err := json.Unmarshal(tc, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["chat_template"] != ChatMLTemplate || cfg["eos_token"] != "<|im_end|>" {
		t.Errorf("tokenizer_config = %v", cfg)
	}
}

func Example() {
	dir, err := os.MkdirTemp("", "testmodel")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	err = Write(dir, Options{Arch: "qwen2", HiddenSize: 32, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, DType: safetensors.BF16, Tied: true, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := modelcfg.Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.ModelType, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.VocabSize, cfg.QKVBias())
	// Output: qwen2 32 2 320 true
}
