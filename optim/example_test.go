package optim_test

import (
	"fmt"

	"github.com/bidora/bidora/optim"
)

// Minimise f(x) = Σ (x_i − 3)² with AdamW under a warm-up + cosine schedule and
// gradient clipping, the way the training loop drives an optimiser.
func Example() {
	x := optim.Param{Name: "x", Shape: []int{2}, Data: []float32{0, 10}, Grad: make([]float32, 2)}
	params := []optim.Param{x}
	opt := optim.NewAdamW(0) // no weight decay: the optimum is exactly 3
	sched := optim.Schedule{Kind: "cosine", Base: 0.5, Warmup: 5, Total: 200}
	for step := range sched.Total {
		for i, v := range x.Data {
			x.Grad[i] = 2 * (v - 3)
		}
		norm := optim.ClipGradNorm(params, 1)
		if step == 0 {
			fmt.Printf("first gradient norm %.3f (clipped to 1), lr %.3f\n", norm, sched.LR(step))
		}
		if step == sched.Warmup {
			fmt.Printf("after warm-up: lr %.3f\n", sched.LR(step))
		}
		opt.Step(params, sched.LR(step))
	}
	fmt.Printf("after %d steps: x = [%.2f %.2f], lr %.3f\n", opt.Steps(), x.Data[0], x.Data[1], sched.LR(opt.Steps()))
	// Output:
	// first gradient norm 15.232 (clipped to 1), lr 0.000
	// after warm-up: lr 0.500
	// after 200 steps: x = [3.00 3.00], lr 0.000
}
