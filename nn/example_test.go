package nn_test

import (
	"fmt"
	"log"

	"github.com/bidora/bidora/nn"
)

// A frozen 2×3 linear layer with a rank-1 DoRA adapter: at PEFT's initialisation
// (B = 0, magnitude = the row norms of W) it computes exactly what W computes; the
// backward then fills the adapter's gradients.
func ExampleLinear() {
	w, err := nn.NewWeightF32(2, 3, []float32{
		3, 0, 4,
		0, 1, 0,
	})
	if err != nil {
		log.Fatal(err)
	}
	a := &nn.Adapter{R: 1, Scale: 2, DoRA: true,
		A: []float32{0.5, -0.5, 0.25}, B: make([]float32, 2),
		GA: make([]float32, 3), GB: make([]float32, 2), M: make([]float32, 2), GM: make([]float32, 2)}
	a.UpdateNorm(w) // n = ‖W + Scale·B·A‖ per row
	copy(a.M, a.Norm())
	fmt.Println("row norms", a.Norm())

	lin := &nn.Linear{W: w, Adapter: a}
	const m = 1 // one token
	x := []float32{1, 2, 3}
	y := make([]float32, m*w.Rows)
	c := lin.NewCache(m)
	lin.Forward(y, x, m, c, false, 0)
	fmt.Println("y", y)

	dy := []float32{1, 1} // gradient of Σ y
	s := &nn.LinearScratch{DH: make([]float32, m*a.R), DYG: make([]float32, m*w.Rows)}
	lin.Backward(nil, dy, x, m, c, s, false, 0, false)
	fmt.Println("dB", a.GB, "dM", a.GM)
	// Output:
	// row norms [5 1]
	// y [15 2]
	// dB [0.5 0.5] dM [3 2]
}
