package merge_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/merge"
	"github.com/bidora/bidora/model"
)

// Fold a DoRA module into one base weight: W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖_row.
func ExampleModule_Apply() {
	w := []float32{
		3, 0, 4,
		0, 1, 0,
	}
	mod := &merge.Module{Weight: "model.layers.0.mlp.down_proj.weight", Out: 2, In: 3, Rank: 1, Scale: 2,
		A:         []float32{0, 0, 0.5},
		B:         []float32{1, 0},
		Magnitude: []float32{10, 3},
	}
	if err := mod.Apply(w); err != nil {
		log.Fatal(err)
	}
	// Row 0: W + s·B·A = [3 0 5], norm √34, scaled to norm 10. Row 1 is only rescaled.
	fmt.Printf("%.4f\n", w)
	// Output: [5.1450 0.0000 8.5749 0.0000 3.0000 0.0000]
}

// Merge a DoRA adapter into a small base model directory and check that the merged
// model computes what base + adapter compute.
func ExampleMerge() {
	root, err := os.MkdirTemp("", "merge-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	base, adapter, out := filepath.Join(root, "base"), filepath.Join(root, "adapter"), filepath.Join(root, "merged")
	if err := tinymodel.Write(base, tinymodel.Options{HiddenSize: 32, NumLayers: 1, Seed: 1}); err != nil {
		log.Fatal(err)
	}

	// Attach a DoRA adapter, give it nonzero B (as training would) and save it.
	m, err := model.Load(base, model.Options{F32Weights: true})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if err := m.AddAdapters(model.AdapterConfig{Targets: []string{"q_proj", "v_proj"}, Rank: 2, Alpha: 4, DoRA: true}); err != nil {
		log.Fatal(err)
	}
	for _, p := range m.Params() {
		for i := range p.Data {
			p.Data[i] += 0.05 * float32(math.Sin(float64(i)))
		}
	}
	if err := m.SaveAdapter(adapter); err != nil {
		log.Fatal(err)
	}

	res, err := merge.Merge(context.Background(), base, adapter, out, merge.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Method, res.DType, res.Merged, "weights merged, files", res.Files)

	ids := []int32{3, 17, 42, 5, 60}
	batch := &dataset.Batch{B: 1, T: len(ids), InputIDs: ids, Labels: ids}
	adapted, err := m.Logits(context.Background(), batch)
	if err != nil {
		log.Fatal(err)
	}
	mm, err := model.Load(out, model.Options{F32Weights: true})
	if err != nil {
		log.Fatal(err)
	}
	defer mm.Close()
	merged, err := mm.Logits(context.Background(), batch)
	if err != nil {
		log.Fatal(err)
	}
	var diff, scale float64
	for i := range merged {
		diff = max(diff, math.Abs(float64(merged[i]-adapted[i])))
		scale = max(scale, math.Abs(float64(adapted[i])))
	}
	fmt.Println("merged logits match base + adapter:", diff/scale < 1e-5)
	// Output:
	// dora F32 2 weights merged, files [model.safetensors]
	// merged logits match base + adapter: true
}
