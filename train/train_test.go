package train

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/safetensors"
)

// bigram is a real, tiny learnable model for exercising the loop: logits for the next
// token are a row of a V×V table indexed by the current token.
type bigram struct {
	v    int
	w    optim.Param
	seen []uint64 // dropout seeds set, to check they are deterministic
}

func newBigram(v int) *bigram {
	return &bigram{v: v, w: optim.Param{Name: "w", Data: make([]float32, v*v), Grad: make([]float32, v*v)}}
}

func (m *bigram) loss(b *dataset.Batch, grad bool) (float64, int) {
	var sum float64
	n := 0
	for r := range b.B {
		ids, labels, _ := b.Row(r)
		for t := 0; t+1 < len(ids); t++ {
			y := labels[t+1]
			if y == dataset.IgnoreIndex {
				continue
			}
			row := m.w.Data[int(ids[t])*m.v:][:m.v]
			mx := math.Inf(-1)
			for _, z := range row {
				mx = math.Max(mx, float64(z))
			}
			var z float64
			for _, x := range row {
				z += math.Exp(float64(x) - mx)
			}
			sum += mx + math.Log(z) - float64(row[y])
			n++
			if grad {
				g := m.w.Grad[int(ids[t])*m.v:][:m.v]
				for j, x := range row {
					g[j] += float32(math.Exp(float64(x)-mx) / z)
				}
				g[y]--
			}
		}
	}
	return sum, n
}

func (m *bigram) SetDropoutSeed(seed uint64) { m.seen = append(m.seen, seed) }
func (m *bigram) LossAndGrad(ctx context.Context, b *dataset.Batch) (float64, int, error) {
	l, n := m.loss(b, true)
	return l, n, nil
}
func (m *bigram) Loss(ctx context.Context, b *dataset.Batch) (float64, int, error) {
	l, n := m.loss(b, false)
	return l, n, nil
}
func (m *bigram) Params() []optim.Param { return []optim.Param{m.w} }
func (m *bigram) SaveAdapter(dir string) error {
	t, err := safetensors.NewTensor("w", safetensors.F32, []int{m.v, m.v}, m.w.Data)
	if err != nil {
		return err
	}
	return safetensors.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), []safetensors.Tensor{t}, nil)
}
func (m *bigram) LoadAdapter(dir string) error {
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		return err
	}
	defer f.Close()
	v, err := f.Float32("w")
	if err != nil {
		return err
	}
	copy(m.w.Data, v)
	return nil
}

// corpus: sequences following a fixed cycle, so the bigram table can learn them.
func corpus(n, v int) []dataset.Example {
	var exs []dataset.Example
	for i := range n {
		l := 3 + i%5
		ids := make([]int32, l)
		for t := range ids {
			ids[t] = int32((i + 3*t) % v)
		}
		labels := append([]int32(nil), ids...)
		labels[1] = dataset.IgnoreIndex // a masked "prompt" token
		exs = append(exs, dataset.Example{InputIDs: ids, Labels: labels})
	}
	return exs
}

// fit is plain fine-tuning: one phase, the Plain stepper.
func fit(ctx context.Context, m Model, trainEx, valEx []dataset.Example, o Options) (*Result, error) {
	return Run(ctx, m, []Phase{{Name: "train", Data: trainEx, Stepper: NewPlain(m, &o)}}, valEx, o)
}

func opts(t *testing.T) Options {
	return Options{Output: t.TempDir(), Epochs: 3, BatchSize: 2, GradAccum: 2, LR: 0.5, Scheduler: "cosine",
		WarmupSteps: 2, WeightDecay: 0.01, MaxGradNorm: 1, Optimizer: "adamw", Seed: 7, GroupByLen: true}
}

func TestLossFallsAndOutputs(t *testing.T) {
	m := newBigram(11)
	o := opts(t)
	o.EvalSteps = 3
	res, err := fit(context.Background(), m, corpus(24, 11), corpus(6, 11), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 18 || len(res.History) != 18 { // 24 ex / 2 per batch = 12 batches / 2 accum = 6 steps × 3 epochs
		t.Fatalf("steps %d history %d", res.Steps, len(res.History))
	}
	if !(res.BestValLoss < res.FirstValLoss-0.5) || !(res.FinalLoss < res.History[0].Loss) {
		t.Fatalf("loss did not fall: val %v → %v, train %v → %v", res.FirstValLoss, res.BestValLoss, res.History[0].Loss, res.FinalLoss)
	}
	for _, f := range []string{MetricsFile, LossPlotFile, "adapter_model.safetensors"} {
		if _, err := os.Stat(filepath.Join(o.Output, f)); err != nil {
			t.Errorf("missing output %s", f)
		}
	}
	if lines := readMetrics(t, o.Output); len(lines) != 18 || lines[2].ValLoss == nil || lines[0].ValLoss != nil {
		t.Fatalf("metrics.jsonl: %d lines, eval at step 3 %v", len(lines), lines[2].ValLoss)
	}
}

func readMetrics(t *testing.T, dir string) []Metrics {
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Metrics
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestGradAccumEqualsLargeBatch: 4 micro-batches of 1 give exactly the update of one
// batch of 4 (token-weighted mean over the effective batch).
func TestGradAccumEqualsLargeBatch(t *testing.T) {
	run := func(bs, accum int) []float32 {
		m := newBigram(7)
		o := opts(t)
		o.BatchSize, o.GradAccum, o.GroupByLen, o.MaxSteps, o.Optimizer = bs, accum, false, 1, "sgd"
		o.WeightDecay, o.MaxGradNorm, o.WarmupSteps, o.Scheduler = 0, 0, 0, "constant"
		// With batch 1 × accum 4 the first four shuffled examples form the step; with
		// batch 4 the first batch holds the same four in the same order.
		if _, err := fit(context.Background(), m, corpus(8, 7), nil, o); err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), m.w.Data...)
	}
	a, b := run(1, 4), run(4, 1)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			t.Fatalf("w[%d]: accum %v vs batch %v", i, a[i], b[i])
		}
	}
}

// TestResumeIsBitExact interrupts a run at a checkpoint and continues it: the loss curve
// and final weights equal an uninterrupted run's bit for bit.
func TestResumeIsBitExact(t *testing.T) {
	full := newBigram(11)
	o := opts(t)
	o.SaveSteps = 5
	ref, err := fit(context.Background(), full, corpus(24, 11), corpus(6, 11), o)
	if err != nil {
		t.Fatal(err)
	}
	// Second run: stop after step 7 by cancelling the context from the logger.
	part := newBigram(11)
	o2 := opts(t)
	o2.SaveSteps = 5
	ctx, cancel := context.WithCancel(context.Background())
	o2.Log = &cancelAt{step: 7, cancel: cancel}
	_, err = fit(ctx, part, corpus(24, 11), corpus(6, 11), o2)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	ck := filepath.Join(o2.Output, "checkpoint-7")
	if _, err := os.Stat(filepath.Join(ck, stateFile)); err != nil {
		t.Fatalf("interrupt did not save checkpoint-7: %v", err)
	}
	resumed := newBigram(11)
	o3 := o2
	o3.Log, o3.ResumeFrom = nil, ck
	res, err := fit(context.Background(), resumed, corpus(24, 11), corpus(6, 11), o3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(losses(ref.History), losses(res.History)) {
		t.Fatalf("loss curves differ:\n%v\n%v", losses(ref.History), losses(res.History))
	}
	if !reflect.DeepEqual(full.w.Data, resumed.w.Data) {
		t.Fatal("final weights differ")
	}
	if got := readMetrics(t, o2.Output); !reflect.DeepEqual(losses(got), losses(ref.History)) {
		t.Fatal("metrics.jsonl after resume is not the uninterrupted curve")
	}
	// Resuming with other settings is refused.
	o4 := o3
	o4.Seed = 8
	if _, err := fit(context.Background(), newBigram(11), corpus(24, 11), nil, o4); err == nil {
		t.Fatal("resume with a different seed accepted")
	}
	o4.Seed = o3.Seed
	if _, err := fit(context.Background(), newBigram(11), corpus(25, 11), nil, o4); err == nil {
		t.Fatal("resume with other data accepted")
	}
}

func losses(h []Metrics) []float64 {
	var out []float64
	for _, m := range h {
		out = append(out, m.Loss)
	}
	return out
}

type cancelAt struct {
	nopLogger
	step   int
	cancel func()
}

func (c *cancelAt) Step(m Metrics) {
	if m.Step == c.step {
		c.cancel()
	}
}

func TestValidateAndOutputDir(t *testing.T) {
	o := opts(t)
	o.Optimizer = "lion"
	if err := o.Validate(); err == nil {
		t.Fatal("bad optimizer accepted")
	}
	dir := t.TempDir()
	if err := CheckOutputDir(dir, false); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if err := CheckOutputDir(dir, false); err == nil {
		t.Fatal("non-empty dir accepted")
	}
	if err := CheckOutputDir(dir, true); err != nil {
		t.Fatal(err)
	}
}
