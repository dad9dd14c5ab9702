package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runEngineCmd executes bidora with args and returns exit code, stdout and stderr.
func runEngineCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func goldenDir(name string) string {
	return filepath.Join("..", "..", "model", "testdata", "golden", name)
}

// goldenRows converts a golden batch.json into eval's JSONL rows.
func goldenRows(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir(name), "batch.json"))
	if err != nil {
		t.Fatalf("the committed golden %s is missing: %v", name, err)
	}
	var b struct {
		InputIDs      [][]int `json:"input_ids"`
		AttentionMask [][]int `json:"attention_mask"`
		Labels        [][]int `json:"labels"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for r := range b.InputIDs {
		n := 0
		for _, v := range b.AttentionMask[r] {
			n += v
		}
		line, _ := json.Marshal(map[string][]int{"input_ids": b.InputIDs[r][:n], "labels": b.Labels[r][:n]})
		sb.Write(append(line, '\n'))
	}
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEvalGoldens(t *testing.T) {
	cases := []struct {
		name, golden, adapter string
		key                   string // case.json key of the expected mean loss
	}{
		{"bf16 base", "llama_lora_bf16", "", "base_loss"},
		{"bf16 with adapter", "llama_lora_bf16", "adapter", "loss"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows := goldenRows(t, c.golden)
			var want map[string]float64
			data, err := os.ReadFile(filepath.Join(goldenDir(c.golden), "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			json.Unmarshal(data, &want) //nolint:errcheck // non-numeric fields are skipped
			args := []string{"eval", "--model", goldenDir(c.golden), "--data", rows, "--batch-size", "1", "--json"}
			if c.adapter != "" {
				args = append(args, "--adapter", filepath.Join(goldenDir(c.golden), c.adapter))
			}
			code, out, errOut := runEngineCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got map[string]float64
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if len(got) != 3 {
				t.Errorf("JSON keys %v, want exactly loss, perplexity, tokens", got)
			}
			if math.Abs(got["loss"]-want[c.key]) > 1e-5*want[c.key] {
				t.Errorf("loss %.9g, want %.9g", got["loss"], want[c.key])
			}
			if got["tokens"] != want["tokens"] {
				t.Errorf("tokens %v, want %v", got["tokens"], want["tokens"])
			}
			if math.Abs(got["perplexity"]-math.Exp(got["loss"])) > 1e-9*got["perplexity"] {
				t.Errorf("perplexity %g is not exp(loss %g)", got["perplexity"], got["loss"])
			}
		})
	}
}

// The real code14m model against the PyTorch reference (skipped when absent).
func TestEvalCode14m(t *testing.T) {
	modelDir := filepath.Join("..", "..", "..", "shared", "models", "code14m")
	if _, err := os.Stat(filepath.Join(modelDir, "config.json")); err != nil {
		t.Skip("../shared/models/code14m absent")
	}
	g := goldenDir("code14m_eval")
	var want struct {
		Loss, Perplexity float64
		Tokens           int
	}
	data, err := os.ReadFile(filepath.Join(g, "expected.json"))
	if err != nil {
		t.Fatalf("the committed code14m_eval golden is missing: %v", err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	for _, bs := range []string{"1", "3"} {
		code, out, errOut := runEngineCmd(t, "eval", "--model", modelDir, "--data", filepath.Join(g, "rows.jsonl"), "--batch-size", bs, "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var got evalResult
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if got.Tokens != want.Tokens || math.Abs(got.Loss-want.Loss) > 1e-5*want.Loss {
			t.Errorf("batch %s: loss %.9g over %d tokens, want %.9g over %d", bs, got.Loss, got.Tokens, want.Loss, want.Tokens)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644) //nolint:errcheck
		return p
	}
	model := goldenDir("llama_lora_bf16")
	cases := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"no model", []string{"eval", "--data", "x"}, 2, "--model"},
		{"no data", []string{"eval", "--model", model}, 2, "--data"},
		{"bad batch", []string{"eval", "--model", model, "--data", "x", "--batch-size", "0"}, 2, "--batch-size"},
		{"bad json", []string{"eval", "--model", model, "--data", write("a.jsonl", "{\"input_ids\":[1,2]}\n{oops\n")}, 1, "a.jsonl:2"},
		{"text row", []string{"eval", "--model", model, "--data", write("b.jsonl", "{\"text\":\"hi\"}\n")}, 1, "tokenizer.json"},
		{"label length", []string{"eval", "--model", model, "--data", write("c.jsonl", "{\"input_ids\":[1,2],\"labels\":[1]}\n")}, 1, `c.jsonl:1: "labels" has 1`},
		{"out of vocab", []string{"eval", "--model", model, "--data", write("d.jsonl", "{\"input_ids\":[1,2,99999]}\n")}, 1, "outside the vocabulary"},
		{"all ignored", []string{"eval", "--model", model, "--data", write("e.jsonl", "{\"input_ids\":[1,2],\"labels\":[-100,-100]}\n")}, 1, "no tokens carry loss"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runEngineCmd(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.contains) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, c.code, c.contains)
			}
		})
	}
}
