package model

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/safetensors"
)

// rewriteCheckpoint edits a tinymodel directory: its config.json (as a map) and its
// single model.safetensors (tensors by name; a nil value deletes one).
func rewriteCheckpoint(t *testing.T, dir string, editCfg func(map[string]any), editTensors func(map[string][]float32, map[string][]int)) {
	t.Helper()
	if editCfg != nil {
		path := filepath.Join(dir, "config.json")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		editCfg(cfg)
		if data, err = json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if editTensors == nil {
		return
	}
	path := filepath.Join(dir, safetensors.SingleFileName)
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	values, shapes := map[string][]float32{}, map[string][]int{}
	for _, name := range f.Names() {
		v, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := f.Info(name)
		values[name], shapes[name] = append([]float32(nil), v...), info.Shape
	}
	f.Close()
	editTensors(values, shapes)
	var ts []safetensors.Tensor
	for name, v := range values {
		if v == nil {
			continue
		}
		tn, err := safetensors.NewTensor(name, safetensors.F32, shapes[name], v)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tn)
	}
	if err := safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// TestLoadRefusesUnusedTensors: a config.json that disagrees with the weights
// (fewer layers, no biases, untied head called tied) is an error naming the
// tensors, while the extras checkpoints carry harmlessly still load.
func TestLoadRefusesUnusedTensors(t *testing.T) {
	cases := []struct {
		name    string
		opts    tinymodel.Options
		cfg     func(map[string]any)
		tensors func(map[string][]float32, map[string][]int)
		want    []string // parts of the error; nil: loads
	}{
		{name: "as written", opts: tinymodel.Options{NumLayers: 4}},
		{name: "qwen2 biases", opts: tinymodel.Options{Arch: "qwen2", NumLayers: 2}},
		{name: "fewer layers in config", opts: tinymodel.Options{NumLayers: 4},
			cfg: func(c map[string]any) { c["num_hidden_layers"] = 2 },
			want: []string{"the checkpoint has 18 tensors that config.json does not use: model.layers.2.",
				"(13 more)", "the weights hold 4 layers but config.json has num_hidden_layers 2", "config.json does not match the weights"}},
		{name: "rotary caches are harmless", opts: tinymodel.Options{NumLayers: 2},
			tensors: func(v map[string][]float32, s map[string][]int) {
				for _, n := range []string{"model.layers.0.self_attn.rotary_emb.inv_freq", "model.layers.1.self_attn.rotary_emb.inv_freq"} {
					v[n], s[n] = make([]float32, 8), []int{8}
				}
			}},
		{name: "qwen2 biases on a llama config", opts: tinymodel.Options{Arch: "qwen2", NumLayers: 2},
			cfg:  func(c map[string]any) { c["model_type"] = "llama" },
			want: []string{"the checkpoint has 6 tensors that config.json does not use: model.layers.0.self_attn.k_proj.bias"}},
		{name: "unknown tensor", opts: tinymodel.Options{NumLayers: 2},
			tensors: func(v map[string][]float32, s map[string][]int) {
				v["score.weight"], s["score.weight"] = make([]float32, 4), []int{2, 2}
			},
			want: []string{"the checkpoint has 1 tensor that config.json does not use: score.weight;"}},
		{name: "tied config, own head", opts: tinymodel.Options{NumLayers: 2},
			cfg:  func(c map[string]any) { c["tie_word_embeddings"] = true },
			want: []string{"tie_word_embeddings true but the checkpoint's lm_head.weight differs from model.embed_tokens.weight"}},
		{name: "tied config, identical head copy", opts: tinymodel.Options{NumLayers: 2},
			cfg: func(c map[string]any) { c["tie_word_embeddings"] = true },
			tensors: func(v map[string][]float32, s map[string][]int) {
				v["lm_head.weight"] = append([]float32(nil), v["model.embed_tokens.weight"]...)
			}},
		{name: "untied config, no head", opts: tinymodel.Options{NumLayers: 2, Tied: true},
			cfg:  func(c map[string]any) { c["tie_word_embeddings"] = false },
			want: []string{"lm_head.weight is missing", "tie_word_embeddings false"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tinymodel.Write(dir, c.opts); err != nil {
				t.Fatal(err)
			}
			rewriteCheckpoint(t, dir, c.cfg, c.tensors)
			m, err := Load(dir, Options{})
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				m.Close()
				return
			}
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want an error containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestUnusedTensorsErrorType(t *testing.T) {
	dir := t.TempDir()
	if err := tinymodel.Write(dir, tinymodel.Options{NumLayers: 3}); err != nil {
		t.Fatal(err)
	}
	rewriteCheckpoint(t, dir, func(c map[string]any) { c["num_hidden_layers"] = 1 }, nil)
	_, err := Load(dir, Options{})
	var ue *UnusedTensorsError
	if !errors.As(err, &ue) || len(ue.Names) != 18 || ue.Layers != 3 || ue.ConfigLayers != 1 {
		t.Fatalf("%v: want an *UnusedTensorsError with 18 names, 3 layers", err)
	}
	if !strings.HasPrefix(err.Error(), dir+": ") {
		t.Errorf("error does not name the directory: %v", err)
	}
}
