package model

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

func tinyConfig(arch string) *modelcfg.Config {
	return &modelcfg.Config{ModelType: arch, HiddenSize: 24, IntermediateSize: 37, NumHiddenLayers: 3,
		NumAttentionHeads: 6, NumKeyValueHeads: 2, HeadDim: 4, VocabSize: 53, RMSNormEps: 1e-6,
		RopeTheta: 10000, HiddenAct: "silu", MaxPositionEmbeddings: 64}
}

func tinyModel(t *testing.T, arch string, opts Options, ac AdapterConfig) *Model {
	t.Helper()
	opts.F32Weights = true
	m, err := New(tinyConfig(arch), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddAdapters(ac); err != nil {
		t.Fatal(err)
	}
	// Nonzero B so that every path carries gradient.
	for i, p := range m.Params() {
		for j := range p.Data {
			p.Data[j] += float32(math.Sin(float64(i*131+j))) * 0.05
		}
	}
	return m
}

func randomBatch(B, T, vocab int, lengths []int) *dataset.Batch {
	b := &dataset.Batch{B: B, T: T, Lengths: lengths}
	for i := 0; i < B*T; i++ {
		id := int32((i*7919 + 13) % vocab)
		b.InputIDs = append(b.InputIDs, id)
		lab := id
		if i%5 == 3 {
			lab = dataset.IgnoreIndex
		}
		b.Labels = append(b.Labels, lab)
	}
	return b
}

func gradsOf(m *Model) [][]float32 {
	var out [][]float32
	for _, p := range m.Params() {
		out = append(out, append([]float32(nil), p.Grad...))
	}
	return out
}

// A padded batch gives the same loss sum and gradients as its rows run one at a time.
func TestBatchMatchesSingleRows(t *testing.T) {
	ctx := context.Background()
	ac := AdapterConfig{Targets: []string{"all-linear"}, Rank: 3, Alpha: 6, DoRA: true}
	m := tinyModel(t, "qwen2", Options{Seed: 1}, ac)
	lengths := []int{11, 4, 9}
	b := randomBatch(3, 11, 53, lengths)
	res, err := asResult(m.LossAndGrad(ctx, b))
	if err != nil {
		t.Fatal(err)
	}
	batchGrads := gradsOf(m)
	m.ZeroGrad()
	var sum float64
	tokens := 0
	for r, l := range lengths {
		row := &dataset.Batch{B: 1, T: l, InputIDs: b.InputIDs[r*11 : r*11+l], Labels: b.Labels[r*11 : r*11+l]}
		rr, err := asResult(m.LossAndGrad(ctx, row))
		if err != nil {
			t.Fatal(err)
		}
		sum += rr.LossSum
		tokens += rr.Tokens
	}
	if tokens != res.Tokens || math.Abs(sum-res.LossSum) > 1e-5*math.Abs(sum) {
		t.Errorf("rows: loss %g over %d tokens; batch: %g over %d", sum, tokens, res.LossSum, res.Tokens)
	}
	for i, p := range m.Params() {
		want := make([]float64, len(p.Grad))
		for j, v := range p.Grad {
			want[j] = float64(v)
		}
		if e := relErr(batchGrads[i], want, 1); e > 1e-5 {
			t.Errorf("%s: batch vs rows relative error %.3g", p.Name, e)
		}
	}
}

// With dropout, checkpointing recomputes the same masks: gradients equal those
// without checkpointing bit for bit; packed segments are accepted.
func TestCheckpointingWithDropout(t *testing.T) {
	ctx := context.Background()
	ac := AdapterConfig{Targets: []string{"q_proj", "v_proj", "up_proj", "down_proj"}, Rank: 2, Alpha: 4, Dropout: 0.2, DoRA: true}
	b := randomBatch(2, 9, 53, []int{9, 6})
	b.Segments = []int32{0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1, 1}
	var grads [2][][]float32
	var loss [2]float64
	for i, noCkpt := range []bool{false, true} {
		m := tinyModel(t, "llama", Options{Seed: 7, NoCheckpointing: noCkpt}, ac)
		res, err := asResult(m.LossAndGrad(ctx, b))
		if err != nil {
			t.Fatal(err)
		}
		grads[i], loss[i] = gradsOf(m), res.LossSum
		ev, _ := asResult(m.Loss(ctx, b))
		if ev.LossSum == res.LossSum {
			t.Error("dropout did not change the training loss")
		}
	}
	if loss[0] != loss[1] {
		t.Errorf("loss with checkpointing %g != without %g", loss[0], loss[1])
	}
	for i := range grads[0] {
		for j := range grads[0][i] {
			if grads[0][i][j] != grads[1][i][j] {
				t.Fatalf("param %d grad %d: %g with checkpointing, %g without", i, j, grads[0][i][j], grads[1][i][j])
			}
		}
	}
}

// One SGD step from the llama_lora golden lands where PyTorch's did.
func TestGoldenSGDStep(t *testing.T) {
	dir := filepath.Join("testdata", "golden", "llama_lora")
	f, err := safetensors.Open(filepath.Join(dir, "sgd_step.safetensors"))
	if err != nil {
		t.Fatalf("sgd_step golden is committed but unreadable: %v", err)
	}
	defer f.Close()
	lr, _ := parseFloat(f.Metadata()["lr"])
	m, err := Load(dir, Options{F32Weights: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.LoadAdapter(filepath.Join(dir, "adapter")); err != nil {
		t.Fatal(err)
	}
	res, err := asResult(m.LossAndGrad(context.Background(), readGoldenBatch(t, filepath.Join(dir, "batch.json"))))
	if err != nil {
		t.Fatal(err)
	}
	exp := goldenF64{f}
	for _, p := range m.Params() {
		got := make([]float32, len(p.Data))
		for i := range got {
			got[i] = p.Data[i] - float32(lr)*p.Grad[i]/float32(res.Tokens)
		}
		if e := relErr(got, exp.get(t, p.Name), 1); e > 1e-6 {
			t.Errorf("%s after SGD: relative error %.3g", p.Name, e)
		}
	}
}

func TestAdapterRoundTrip(t *testing.T) {
	ac := AdapterConfig{Targets: []string{"k_proj", "gate_proj"}, Rank: 2, Alpha: 3, RSLoRA: true, DoRA: true,
		RankPattern: peft.Patterns{{Key: `model\.layers\.1\.mlp\.gate_proj`, Value: 5}}}
	m := tinyModel(t, "llama", Options{Seed: 3}, ac)
	dir := t.TempDir()
	if err := m.SaveAdapter(dir); err != nil {
		t.Fatal(err)
	}
	m2, err := New(tinyConfig("llama"), Options{F32Weights: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.LoadAdapter(dir); err != nil {
		t.Fatal(err)
	}
	if len(m2.Params()) != len(m.Params()) {
		t.Fatalf("%d params after load, want %d", len(m2.Params()), len(m.Params()))
	}
	for i, p := range m.Params() {
		q := m2.Params()[i]
		if p.Name != q.Name || len(p.Data) != len(q.Data) {
			t.Fatalf("param %d: %s %v vs %s %v", i, p.Name, p.Shape, q.Name, q.Shape)
		}
		for j := range p.Data {
			if p.Data[j] != q.Data[j] {
				t.Fatalf("%s[%d] = %g after load, want %g", p.Name, j, q.Data[j], p.Data[j])
			}
		}
	}
	if r := m2.Layers[1].Proj[projGate].Adapter.R; r != 5 {
		t.Errorf("rank pattern: layer 1 gate rank %d, want 5", r)
	}
	if s, want := m2.Layers[0].Proj[projK].Adapter.Scale, float32(3/math.Sqrt(2)); s != want {
		t.Errorf("rsLoRA scale %g, want %g", s, want)
	}
	// Loading into the same adapter config keeps the parameter slices (a resumed
	// trainer holds them) and overwrites their values.
	before := m2.Params()[0].Data
	for i := range before {
		before[i] = 42
	}
	if err := m2.LoadAdapter(dir); err != nil {
		t.Fatal(err)
	}
	if &m2.Params()[0].Data[0] != &before[0] || before[0] == 42 {
		t.Error("LoadAdapter with an unchanged config replaced the parameter tensors or left them stale")
	}
}

func TestFreshAdapterIsIdentity(t *testing.T) {
	ctx := context.Background()
	m, err := New(tinyConfig("llama"), Options{F32Weights: true, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(2, 7, 53, []int{7, 5})
	base, _ := asResult(m.Loss(ctx, b))
	for _, dora := range []bool{false, true} {
		if err := m.AddAdapters(AdapterConfig{Targets: []string{"all-linear"}, Rank: 4, Alpha: 8, DoRA: dora}); err != nil {
			t.Fatal(err)
		}
		res, _ := asResult(m.Loss(ctx, b))
		if math.Abs(res.LossSum-base.LossSum) > 1e-5*base.LossSum {
			t.Errorf("dora=%v: fresh adapter changed the loss %g → %g", dora, base.LossSum, res.LossSum)
		}
	}
}

func TestBadInput(t *testing.T) {
	m, err := New(tinyConfig("llama"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(1, 4, 53, nil)
	b.InputIDs[2] = 53
	if _, err := asResult(m.Loss(context.Background(), b)); err == nil {
		t.Error("out-of-vocabulary id accepted")
	}
	if _, err := asResult(m.LossAndGrad(context.Background(), randomBatch(1, 4, 53, nil))); err == nil {
		t.Error("training without adapters accepted")
	}
	if err := m.AddAdapters(AdapterConfig{Targets: []string{"qkv"}, Rank: 2, Alpha: 2}); err == nil {
		t.Error("unknown target accepted")
	}
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

// TestBatchShapesChange runs batches of varying B×T through one workspace (eval first,
// then training at a smaller and a larger shape within the capacity), as the trainer
// and BiDoRA do: every buffer must be sized for the capacity, not the first shape.
func TestBatchShapesChange(t *testing.T) {
	m := tinyModel(t, "llama", Options{Seed: 1}, AdapterConfig{Targets: []string{"all-linear"}, Rank: 2, Alpha: 4})
	ctx := context.Background()
	if _, err := asResult(m.Loss(ctx, randomBatch(2, 8, 53, nil))); err != nil { // sets the capacity
		t.Fatal(err)
	}
	for _, s := range [][2]int{{1, 5}, {2, 8}, {4, 3}, {1, 16}} {
		b := randomBatch(s[0], s[1], 53, nil)
		if _, err := asResult(m.LossAndGrad(ctx, b)); err != nil {
			t.Fatalf("B=%d T=%d: %v", s[0], s[1], err)
		}
		if _, err := asResult(m.Loss(ctx, b)); err != nil {
			t.Fatal(err)
		}
	}
}

// result gathers what Loss and LossAndGrad return, for tests.
type result struct {
	LossSum float64
	Tokens  int
}

func (r result) Mean() float64 { return r.LossSum / float64(r.Tokens) }

func asResult(sum float64, tokens int, err error) (result, error) {
	return result{sum, tokens}, err
}
