package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/bidora/bidora/hub/hubtest"
	"github.com/bidora/bidora/tokenizer"
)

// trainLosses runs train and returns the training loss of every step (metrics.jsonl).
func trainLosses(t *testing.T, args ...string) []float64 {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := run(t, append([]string{"train", "--output", out}, args...)...)
	if code != ExitOK {
		t.Fatalf("train exit %d\n%s\n%s", code, stdout, stderr)
	}
	f, err := os.Open(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var losses []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct{ Loss float64 }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		losses = append(losses, m.Loss)
	}
	return losses
}

// TestEachDataFormatMemorises trains a tiny model on a few rows of each row kind and
// checks that the training loss on them falls clearly. (The random model's tied
// embeddings are tiny, so an adapter alone cannot drive the loss near zero: the bar is
// a fall that an unlearned or masked-out batch could not show.)
func TestEachDataFormatMemorises(t *testing.T) {
	fakeHardware(t, 22)
	modelDir := tinyModelDir(t, "llama")
	tok, err := tokenizer.Load(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(s string) string {
		b, _ := json.Marshal(tok.Encode(s))
		return string(b)
	}
	formats := map[string][]string{
		"chat": {`{"messages":[{"role":"user","content":"cube"},{"role":"assistant","content":"cube(10);"}]}`,
			`{"messages":[{"role":"system","content":"scad"},{"role":"user","content":"ball"},{"role":"assistant","content":"sphere(5);"}]}`},
		"instruction": {`{"instruction":"cube","input":"10","output":"cube(10);"}`, `{"instruction":"ball","output":"sphere(5);"}`},
		"completion":  {`{"prompt":"cube","completion":"cube(10);"}`, `{"prompt":"ball","completion":"sphere(5);"}`},
		"text":        {`{"text":"cube(10);"}`, `{"code":"sphere(5);"}`},
		"tokens":      {`{"input_ids":` + ids("cube(10);") + `}`, `{"input_ids":` + ids("sphere(5);") + `,"labels":null}`},
	}
	for name, rows := range formats {
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), name+".jsonl")
			if err := os.WriteFile(data, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			l := trainLosses(t, "--model", modelDir, "--train-file", data, "--val-split", "0", "--max-steps", "40",
				"--batch-size", "2", "--grad-accum", "1", "--lr", "2e-2", "--warmup-steps", "0", "--lr-scheduler", "constant",
				"--targets", "all-linear", "--rank", "8", "--dropout", "0", "--max-seq-len", "64", "--seed", "1")
			if first, last := l[0], l[len(l)-1]; !(last < first-0.3) {
				t.Errorf("loss %.3f → %.3f: did not memorise", first, last)
			}
		})
	}
}

// TestTrainFromFakeHubDataset serves a parquet dataset from the fake hub and trains on it.
func TestTrainFromFakeHubDataset(t *testing.T) {
	fakeHardware(t, 22)
	srv := hubtest.New(t)
	type row struct {
		Instruction string `parquet:"instruction"`
		Output      string `parquet:"output"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []row{{"cube", "cube(10);"}, {"ball", "sphere(5);"}, {"cone", "cylinder(h=5, r1=3, r2=0);"}}); err != nil {
		t.Fatal(err)
	}
	srv.AddRepo(hubtest.Repo{Type: "dataset", ID: "bidora/scad-mini", Files: []hubtest.File{
		{Name: "data/train-00000-of-00001.parquet", Data: buf.Bytes(), LFS: true}}})
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("HF_TOKEN", "")
	l := trainLosses(t, "--model", tinyModelDir(t, "qwen2"), "--dataset", "bidora/scad-mini", "--val-split", "0",
		"--max-steps", "3", "--batch-size", "3", "--max-seq-len", "64")
	if len(l) != 3 {
		t.Fatalf("%d steps, want 3", len(l))
	}
}

// TestTrainMaxLineBytes: train's --max-line-bytes bounds a data row, and the message
// names the file:line and the limit.
func TestTrainMaxLineBytes(t *testing.T) {
	fakeHardware(t, 22)
	data := filepath.Join(t.TempDir(), "d.jsonl")
	if err := os.WriteFile(data, []byte(`{"text":"cube(1);"}`+"\n"+`{"text":"`+strings.Repeat("x", 4000)+`"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "train", "--model", tinyModelDir(t, "llama"), "--train-file", data, "--output", filepath.Join(t.TempDir(), "o"),
		"--max-steps", "1", "--val-split", "0", "--max-line-bytes", "1024")
	if code == ExitOK || !strings.Contains(stderr, data+":2: line longer than the limit of 1 KiB") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}

// TestTemplateChatWithoutTemplate: --template chat on a tokenizer without a chat
// template names the flag (the dataset package reports the field, the CLI the flag).
func TestTemplateChatWithoutTemplate(t *testing.T) {
	fakeHardware(t, 22)
	data := filepath.Join(t.TempDir(), "d.jsonl")
	os.WriteFile(data, []byte(`{"text":"cube(1);"}`+"\n"), 0o644)
	model := tinyModelDir(t, "llama")
	cfgPath := filepath.Join(model, "tokenizer_config.json")
	var tc map[string]any
	raw, err := os.ReadFile(cfgPath)
	if err != nil || json.Unmarshal(raw, &tc) != nil {
		t.Fatalf("tokenizer_config.json: %v", err)
	}
	delete(tc, "chat_template")
	raw, _ = json.Marshal(tc)
	os.WriteFile(cfgPath, raw, 0o644)
	code, _, stderr := run(t, "train", "--model", model, "--train-file", data, "--output", filepath.Join(t.TempDir(), "o"),
		"--template", "chat", "--max-steps", "1", "--val-split", "0")
	if code != ExitUsage || !strings.Contains(stderr, "--template chat: the tokenizer has no chat_template") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}
