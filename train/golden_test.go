package train

import (
	"context"
	"github.com/bidora/bidora/internal/golden"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/safetensors"
)

// TestSGDStepMatchesTorchGolden runs one optimiser step through the whole training
// loop (batching, token-weighted mean, optim.SGD, constant schedule) on the golden
// batch and compares the adapter with the PyTorch reference's SGD step.
func TestSGDStepMatchesTorchGolden(t *testing.T) {
	dir := filepath.Join("..", "model", "testdata", "golden", "llama_lora")
	f, err := safetensors.Open(filepath.Join(dir, "sgd_step.safetensors"))
	if err != nil {
		t.Fatalf("the committed golden is missing or unreadable: %v", err)
	}
	defer f.Close()
	lr, err := strconv.ParseFloat(f.Metadata()["lr"], 64)
	if err != nil {
		t.Fatalf("sgd_step.safetensors metadata lr: %v", err)
	}
	exs := golden.Examples(t, dir)
	m, err := model.Load(dir, model.Options{F32Weights: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.LoadAdapter(filepath.Join(dir, "adapter")); err != nil {
		t.Fatal(err)
	}
	o := Options{Output: t.TempDir(), MaxSteps: 1, BatchSize: len(exs), GradAccum: 1, LR: lr, Scheduler: "constant", Optimizer: "sgd", Seed: 1}
	if _, err := fit(context.Background(), m, exs, nil, o); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		want, err := f.Float32(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		scale, worst := 0.0, 0.0
		for i := range want {
			scale = math.Max(scale, math.Abs(float64(want[i])))
			worst = math.Max(worst, math.Abs(float64(p.Data[i]-want[i])))
		}
		if worst > 1e-6*scale {
			t.Errorf("%s after one SGD step: max error %.3g (scale %.3g)", p.Name, worst, scale)
		}
	}
}
