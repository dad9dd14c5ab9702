package bilevel

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
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/train"
)

var _ Model = (*model.Model)(nil)

// tinyEngine returns a tiny real model with a DoRA adapter (twice: the trained model
// and the one whose params the caller reads).
func tinyEngine(t *testing.T, dropout float64) (*model.Model, *model.Model) {
	t.Helper()
	cfg := &modelcfg.Config{ModelType: "llama", HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 4, VocabSize: 13, RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu"}
	m, err := model.New(cfg, model.Options{Seed: 5, F32Weights: true, Name: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddAdapters(model.AdapterConfig{Targets: []string{"all-linear"}, Rank: 2, Alpha: 4, Dropout: dropout, DoRA: true}); err != nil {
		t.Fatal(err)
	}
	return m, m
}

// corpus is n short sequences over a small vocabulary with a learnable pattern.
func corpus(n, vocab int, seed int) []dataset.Example {
	var ex []dataset.Example
	for i := 0; i < n; i++ {
		L := 5 + (i*3+seed)%6
		e := dataset.Example{}
		for j := 0; j < L; j++ {
			id := int32((i*seed + j*j + 2*j) % vocab)
			e.InputIDs = append(e.InputIDs, id)
			e.Labels = append(e.Labels, id)
		}
		e.Labels[0] = dataset.IgnoreIndex
		ex = append(ex, e)
	}
	return ex
}

func testData() Data {
	all := corpus(20, 13, 3)
	inner, outer := dataset.Split(all, 0.2, 9)
	return Data{Inner: inner, Outer: outer, Retrain: all}
}

var testEval = corpus(4, 13, 7)

// testOptions: the loop's options and BiDoRA's.
type testOpts struct {
	train.Options
	bo Options
}

func testOptions(t *testing.T) testOpts {
	return testOpts{
		Options: train.Options{Output: t.TempDir(), Epochs: 2, BatchSize: 3, GradAccum: 2, LR: 2e-2, Scheduler: "cosine",
			WarmupSteps: 1, WeightDecay: 0.01, MaxGradNorm: 1, Optimizer: "adamw", Seed: 42, SaveSteps: 1, GroupByLen: true},
		bo: Options{UpperLRMult: 2, OrthReg: 1e-3, OrthRows: 5},
	}
}

func run(ctx context.Context, m Model, d Data, o testOpts) (*Result, error) {
	return Run(ctx, m, d, testEval, o.bo, o.Options)
}

type cancelAt struct {
	step   int
	cancel func()
}

func (c *cancelAt) Start(int) {}
func (c *cancelAt) Step(m train.Metrics) {
	if m.Step == c.step {
		c.cancel()
	}
}
func (c *cancelAt) Eval(int, float64)      {}
func (c *cancelAt) Message(string, ...any) {}

func readMetrics(t *testing.T, dir string) []train.Metrics {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []train.Metrics
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m train.Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		m.ElapsedS, m.TokensPS = 0, 0
		out = append(out, m)
	}
	return out
}

func paramsOf(m *model.Model) [][]float32 {
	var out [][]float32
	for _, p := range m.Params() {
		out = append(out, append([]float32(nil), p.Data...))
	}
	return out
}

// TestRunBothPhasesAndResume trains through both phases (with dropout, so the dropout
// streams matter), then repeats the run interrupted in the search phase and in the
// retraining phase and resumed from the checkpoints: parameters and metrics must be
// bit for bit those of the uninterrupted run.
func TestRunBothPhasesAndResume(t *testing.T) {
	d := testData()
	search, retrain := Steps(d, testOptions(t).bo, testOptions(t).Options)
	if search != 6 || retrain != 8 {
		t.Fatalf("steps %d+%d, want 6+8 (16 inner and 20 retraining examples, batch 3, accum 2, 2 epochs)", search, retrain)
	}
	eng, m := tinyEngine(t, 0.1)
	o := testOptions(t)
	want, err := run(context.Background(), eng, d, o)
	if err != nil {
		t.Fatal(err)
	}
	if want.SearchSteps != search || want.RetrainSteps != retrain || want.Steps != search+retrain {
		t.Fatalf("result steps %d (%d+%d)", want.Steps, want.SearchSteps, want.RetrainSteps)
	}
	wantParams := paramsOf(m)
	wantLog := readMetrics(t, o.Output)
	if len(wantLog) != search+retrain {
		t.Fatalf("metrics.jsonl has %d lines, want %d", len(wantLog), search+retrain)
	}
	for i, ml := range wantLog {
		phase := PhaseSearch
		if i >= search {
			phase = PhaseRetrain
		}
		if ml.Phase != phase || ml.Step != i+1 || !(ml.Extra["lower_loss"] > 0) || ml.Loss != ml.Extra["lower_loss"] || !(ml.Extra["reg_loss"] > 0) {
			t.Errorf("metrics line %d: %+v", i+1, ml)
		}
		_, hasUpper := ml.Extra["upper_loss"]
		if hasUpper != (phase == PhaseSearch) || phase == PhaseSearch && !(ml.Extra["hyper_eps"] > 0) {
			t.Errorf("metrics line %d: upper level %v eps %v in phase %s", i+1, ml.Extra["upper_loss"], ml.Extra["hyper_eps"], phase)
		}
	}

	// The magnitudes are frozen in the retraining phase: the final m equals m* at the
	// end of the search, and the direction restarted (checked through the checkpoint).
	_, ck := tinyEngine(t, 0.1)
	if err := ck.LoadAdapter(filepath.Join(o.Output, "checkpoint-6")); err != nil {
		t.Fatal(err)
	}
	for i, p := range ck.Params() {
		isMag := len(p.Shape) == 1
		if isMag && !reflect.DeepEqual(p.Data, wantParams[i]) {
			t.Errorf("%s changed during retraining", p.Name)
		}
	}
	_, fresh := tinyEngine(t, 0.1)
	for i, p := range fresh.Params() {
		if len(p.Shape) == 1 && reflect.DeepEqual(p.Data, wantParams[i]) {
			t.Errorf("%s was never trained", p.Name)
		}
	}

	// The saved adapter, loaded as DoRA into a fresh model, reproduces the trained one.
	loadedEng, loaded := tinyEngine(t, 0.1)
	if err := loaded.LoadAdapter(o.Output); err != nil {
		t.Fatal(err)
	}
	l1, _, err := train.Evaluate(context.Background(), eng, testEval, 2)
	if err != nil {
		t.Fatal(err)
	}
	l2, _, err := train.Evaluate(context.Background(), loadedEng, testEval, 2)
	if err != nil || l1 != l2 {
		t.Errorf("reloaded adapter loss %v, trained %v (%v)", l2, l1, err)
	}

	for _, stop := range []int{3, search + 2} {
		partEng, _ := tinyEngine(t, 0.1)
		op := testOptions(t)
		ctx, cancel := context.WithCancel(context.Background())
		op.Log = &cancelAt{step: stop, cancel: cancel}
		if _, err := run(ctx, partEng, d, op); !errors.Is(err, train.ErrInterrupted) {
			t.Fatalf("stop at %d: want interruption, got %v", stop, err)
		}
		resEng, res := tinyEngine(t, 0.1)
		or := testOptions(t)
		or.Output, or.ResumeFrom = op.Output, filepath.Join(op.Output, "checkpoint-"+itoa(stop))
		got, err := run(context.Background(), resEng, d, or)
		if err != nil {
			t.Fatalf("resume from %d: %v", stop, err)
		}
		if !reflect.DeepEqual(paramsOf(res), wantParams) {
			t.Errorf("resumed at step %d: parameters differ from the uninterrupted run", stop)
		}
		if gotLog := readMetrics(t, or.Output); !reflect.DeepEqual(gotLog, wantLog) {
			t.Errorf("resumed at step %d: metrics differ\n got %+v\nwant %+v", stop, gotLog, wantLog)
		}
		if got.FinalUpperLoss != want.FinalUpperLoss && stop < search {
			t.Errorf("resumed at step %d: final upper loss %v, want %v", stop, got.FinalUpperLoss, want.FinalUpperLoss)
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestNoRetrainAndFirstOrder: --no-retrain stops after the search, first order costs
// no training passes in the upper step and gives a different result.
func TestNoRetrainAndFirstOrder(t *testing.T) {
	d := testData()
	run := func(firstOrder bool) [][]float32 {
		eng, m := tinyEngine(t, 0)
		o := testOptions(t)
		o.bo.NoRetrain, o.bo.FirstOrder, o.SaveSteps = true, firstOrder, 0
		res, err := run(context.Background(), eng, d, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Steps != 6 || res.RetrainSteps != 0 {
			t.Fatalf("steps %d, retrain %d", res.Steps, res.RetrainSteps)
		}
		for _, ml := range res.History {
			if (ml.Extra["hyper_eps"] == 0) != firstOrder {
				t.Errorf("first order %v: ε = %v", firstOrder, ml.Extra["hyper_eps"])
			}
		}
		return paramsOf(m)
	}
	if reflect.DeepEqual(run(false), run(true)) {
		t.Error("first and second order gave identical parameters")
	}
}

// TestHypergradientEngine checks the hypergradient of the real engine (f32) against
// a Richardson-extrapolated finite difference of its own gradients.
func TestHypergradientEngine(t *testing.T) {
	eng, m := tinyEngine(t, 0)
	for i, p := range m.Params() { // a trained-looking direction
		for j := range p.Data {
			if len(p.Shape) == 2 {
				p.Data[j] += float32(math.Sin(float64(i*31+j))) * 0.3
			}
		}
	}
	d := testData()
	tr := dataset.EpochBatches(d.Inner, 0, dataset.BatchOptions{BatchSize: 4, Seed: 1})[:2]
	val := dataset.EpochBatches(d.Outer, 0, dataset.BatchOptions{BatchSize: 4, Seed: 1})
	groupGrad := func(ctx context.Context, g []dataset.Batch, seed uint64) (float64, int, error) {
		return train.AccumulateGrad(ctx, eng, g, seed)
	}
	var lv Levels[float32]
	var mags [][]float32
	for _, p := range eng.Params() {
		if len(findShape(m, p.Name)) == 1 {
			lv.MagGrad = append(lv.MagGrad, p.Grad)
			mags = append(mags, make([]float32, len(p.Grad)))
			continue
		}
		lv.Dir, lv.DirGrad = append(lv.Dir, p.Data), append(lv.DirGrad, p.Grad)
	}
	lv.UpperGrad = func(ctx context.Context) (float64, error) { l, _, err := groupGrad(ctx, val, 1); return l, err }
	lv.LowerGrad = func(ctx context.Context) error { _, _, err := groupGrad(ctx, tr, 2); return err }
	hyper := func(r float64, first bool) [][]float32 {
		g := clone2(mags)
		if _, err := Hypergradient(context.Background(), lv, r, first, g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	direct := hyper(0.01, true)
	g1, g2 := hyper(0.01, false), hyper(0.02, false)
	var maxErr, maxSecond float64
	for i := range g1 {
		for j := range g1[i] {
			s1 := float64(direct[i][j] - g1[i][j])
			s2 := float64(direct[i][j] - g2[i][j])
			ref := (4*s1 - s2) / 3 // Richardson: cancels the ε² term
			maxErr = math.Max(maxErr, math.Abs(s1-ref))
			maxSecond = math.Max(maxSecond, math.Abs(ref))
		}
	}
	t.Logf("second-order term: max %.4g, deviation from the extrapolated value %.3g", maxSecond, maxErr)
	if maxSecond == 0 || maxErr > 0.005*maxSecond {
		t.Errorf("engine hypergradient second-order term off by %.3g (max %.3g)", maxErr, maxSecond)
	}
	// First order is exactly the magnitude gradient of the validation loss.
	if _, _, err := groupGrad(context.Background(), val, 1); err != nil {
		t.Fatal(err)
	}
	for i := range direct {
		if !reflect.DeepEqual(direct[i], lv.MagGrad[i]) {
			t.Fatal("first-order hypergradient differs from ∂L_val/∂m")
		}
	}
}

func findShape(m *model.Model, name string) []int {
	for _, p := range m.Params() {
		if p.Name == name {
			return p.Shape
		}
	}
	return nil
}
