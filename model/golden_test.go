package model

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/safetensors"
)

// The goldens in testdata/golden/<case>/ come from tools/reference (PyTorch, float64):
// config.json + model.safetensors (a tiny random model), adapter/ (a PEFT adapter
// with nonzero A and B), batch.json (right-padded rows, HF labels) and
// expected.safetensors (F64: loss, base_loss, logits [B, T, vocab] and
// grad/<peft key>, gradients of the mean loss).

var goldenCases = []struct {
	name string
	tol  float64 // relative tolerance on gradients and logits (loss: tol/10)
	bf16 bool    // run with the default bf16 weights (else f32)
}{
	{"llama_lora", 1e-5, false},
	{"llama_dora", 1e-5, false},
	{"llama_rslora_all", 1e-5, false},
	{"qwen2_lora_all", 1e-5, false},
	{"qwen2_dora_all", 1e-5, false},
	{"mistral_window", 1e-5, false}, // sliding_window 4 < T = 10
	// The contract asks 1e-2 for bf16; the reference widens the same bf16 values, so
	// the engine is in fact as close as on the f32 path. 1e-4 leaves margin.
	{"llama_lora_bf16", 1e-4, true},
}

type goldenBatch struct {
	InputIDs      [][]int32 `json:"input_ids"`
	AttentionMask [][]int   `json:"attention_mask"`
	Labels        [][]int32 `json:"labels"`
}

func readGoldenBatch(t *testing.T, path string) *dataset.Batch {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var gb goldenBatch
	if err := json.Unmarshal(data, &gb); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := &dataset.Batch{B: len(gb.InputIDs), T: len(gb.InputIDs[0])}
	for r := range gb.InputIDs {
		b.InputIDs = append(b.InputIDs, gb.InputIDs[r]...)
		b.Labels = append(b.Labels, gb.Labels[r]...)
		n := 0
		for i, v := range gb.AttentionMask[r] {
			if v == 1 {
				if i != n {
					t.Fatalf("%s: row %d is not right-padded", path, r)
				}
				n++
			}
		}
		b.Lengths = append(b.Lengths, n)
	}
	return b
}

// goldenF64 reads F64 tensors of expected.safetensors without rounding to f32.
type goldenF64 struct {
	f *safetensors.File
}

func (g goldenF64) get(t *testing.T, name string) []float64 {
	t.Helper()
	info, ok := g.f.Info(name)
	if !ok || info.DType != safetensors.F64 {
		t.Fatalf("expected tensor %s missing or not F64", name)
	}
	raw, err := g.f.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(raw)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return out
}

// relErr is max|got−want| / max|want| (a norm-wise relative error).
func relErr(got []float32, want []float64, scaleBy float64) float64 {
	var num, den float64
	for i, w := range want {
		num = math.Max(num, math.Abs(float64(got[i])*scaleBy-w))
		den = math.Max(den, math.Abs(w))
	}
	return num / den
}

func TestGolden(t *testing.T) {
	for _, gc := range goldenCases {
		for _, ckpt := range []bool{true, false} {
			name := gc.name + map[bool]string{true: "/checkpointing", false: "/no-checkpointing"}[ckpt]
			t.Run(name, func(t *testing.T) {
				dir := filepath.Join("testdata", "golden", gc.name)
				if _, err := os.Stat(dir); err != nil {
					t.Fatalf("golden %s is committed but unreadable (regenerate with tools/reference/make_goldens.py): %v", dir, err)
				}
				runGolden(t, dir, goldenTol{gc.tol / 10, gc.tol, gc.tol}, gc.bf16, ckpt, ComputeF32)
			})
		}
	}
}

// bf16GoldenTol is the bf16-compute goldens' tolerance. Each rounding to bf16 moves a
// value by up to 2⁻⁹ relative; the f32-weight cases round the weights too (while
// packing), and the errors add up through the layers and the backward. Measured on
// these cases: loss ≤ 1.1e-3, logits ≤ 1.1e-2, gradients ≤ 7.8e-2 (the worst, the
// small attention LoRA gradients of f32-weight cases; the bf16-weight case ≤ 2.5e-2).
// The bounds leave about 2× margin; a packing or indexing mistake is off by O(1).
var bf16GoldenTol = goldenTol{loss: 3e-3, logits: 3e-2, grad: 0.15}

// TestGoldenBF16Compute runs every golden case with bf16 compute (the frozen products
// on the bf16-compute kernels, native or the plain-Go twin) against the same float64
// reference, at bf16 tolerance.
func TestGoldenBF16Compute(t *testing.T) {
	for _, gc := range goldenCases {
		t.Run(gc.name, func(t *testing.T) {
			runGolden(t, filepath.Join("testdata", "golden", gc.name), bf16GoldenTol, gc.bf16, true, ComputeBF16)
		})
	}
}

// Every committed golden directory is one the tests read: a case added to testdata
// but not to goldenCases would otherwise never run.
func TestGoldenCasesCoverTestdata(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"code14m_eval": true} // read by internal/cli's eval tests
	for _, gc := range goldenCases {
		known[gc.name] = true
	}
	dirs := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dirs++
		if !known[e.Name()] {
			t.Errorf("testdata/golden/%s is not in goldenCases", e.Name())
		}
	}
	if dirs != len(known) {
		t.Errorf("testdata/golden has %d case directories, the tests know %d", dirs, len(known))
	}
}

// goldenTol holds relative tolerances: on the losses, the logits (norm-wise) and each
// gradient (norm-wise).
type goldenTol struct{ loss, logits, grad float64 }

func runGolden(t *testing.T, dir string, tol goldenTol, bf16, ckpt bool, compute Compute) {
	ctx := context.Background()
	ef, err := safetensors.Open(filepath.Join(dir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	exp := goldenF64{ef}
	batch := readGoldenBatch(t, filepath.Join(dir, "batch.json"))
	tokens, _ := strconv.Atoi(ef.Metadata()["tokens"])

	// f32 goldens are checked with f32 weights; the bf16 golden with the default.
	opts := Options{F32Weights: !bf16, NoCheckpointing: !ckpt, Compute: compute}
	m, err := Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Compute() != compute {
		t.Fatalf("model computes in %s, asked %s", m.Compute(), compute)
	}

	base, err := asResult(m.Loss(ctx, batch))
	if err != nil {
		t.Fatal(err)
	}
	if want := exp.get(t, "base_loss")[0]; math.Abs(base.Mean()-want) > tol.loss*math.Abs(want) {
		t.Errorf("base loss %.10g, want %.10g (rel %.2g)", base.Mean(), want, math.Abs(base.Mean()-want)/want)
	}
	if err := m.LoadAdapter(filepath.Join(dir, "adapter")); err != nil {
		t.Fatal(err)
	}
	res, err := asResult(m.LossAndGrad(ctx, batch))
	if err != nil {
		t.Fatal(err)
	}
	if res.Tokens != tokens {
		t.Errorf("tokens %d, want %d", res.Tokens, tokens)
	}
	if want := exp.get(t, "loss")[0]; math.Abs(res.Mean()-want) > tol.loss*math.Abs(want) {
		t.Errorf("loss %.10g, want %.10g (rel %.2g)", res.Mean(), want, math.Abs(res.Mean()-want)/want)
	}
	worst := 0.0
	for _, p := range m.Params() {
		e := relErr(p.Grad, exp.get(t, "grad/"+p.Name), 1/float64(res.Tokens))
		worst = math.Max(worst, e)
		if e > tol.grad {
			t.Errorf("grad %s: relative error %.3g > %g", p.Name, e, tol.grad)
		}
	}
	t.Logf("worst gradient relative error %.3g", worst)
	if got, want := len(m.Params()), countGrads(ef); got != want {
		t.Errorf("%d adapter params, golden has %d gradients", got, want)
	}
	// Eval-mode loss equals the training loss (no dropout in the goldens).
	ev, err := asResult(m.Loss(ctx, batch))
	if err != nil {
		t.Fatal(err)
	}
	if ev.LossSum != res.LossSum {
		t.Errorf("eval loss sum %.10g != training loss sum %.10g", ev.LossSum, res.LossSum)
	}
	// Logits on real (unpadded) positions.
	logits, err := m.Logits(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := exp.get(t, "logits")
	V := m.Config.VocabSize
	var got32 []float32
	var want64 []float64
	for r := 0; r < batch.B; r++ {
		for i := 0; i < batch.Length(r); i++ {
			o := (r*batch.T + i) * V
			got32 = append(got32, logits[o:o+V]...)
			want64 = append(want64, want[o:o+V]...)
		}
	}
	e := relErr(got32, want64, 1)
	if e > tol.logits {
		t.Errorf("logits relative error %.3g > %g", e, tol.logits)
	}
	t.Logf("logits relative error %.3g", e)
}

func countGrads(f *safetensors.File) int {
	n := 0
	for _, name := range f.Names() {
		if len(name) > 5 && name[:5] == "grad/" {
			n++
		}
	}
	return n
}
