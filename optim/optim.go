// Package optim holds the optimisers (AdamW, SGD), learning-rate schedules and gradient
// clipping used to train adapter parameters. Parameters are plain float32 slices with a
// gradient slice of the same length; the optimiser keeps its own state per parameter.
//
// The update rules and schedules follow PyTorch's torch.optim.AdamW / SGD and
// HF transformers' get_*_schedule_with_warmup, so a run can be compared step by step.
package optim

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/bidora/bidora/kernels"
)

// stepGrain is the fewest values one worker of an optimiser step updates.
const stepGrain = 1 << 14

// parallelValues runs fn(i, lo, hi) over every value of every parameter, each value
// once, for ranges [lo, hi) of parameter i, spread over the kernel threads by value
// count (an optimiser step is element-wise, so the split does not change the result).
func parallelValues(params []Param, fn func(i, lo, hi int)) {
	ends, total := valueEnds(params, false)
	kernels.Parallel(total, stepGrain, func(lo, hi int) { spans(params, ends, lo, hi, fn) })
}

// valueEnds returns the cumulative value counts of params (of Grad with grad, else
// of Data) and their total.
func valueEnds(params []Param, grad bool) ([]int, int) {
	ends := make([]int, len(params))
	total := 0
	for i, p := range params {
		if grad {
			total += len(p.Grad)
		} else {
			total += len(p.Data)
		}
		ends[i] = total
	}
	return ends, total
}

// spans calls fn(i, lo, hi) for the pieces of the global value range [lo, hi) (values
// of all params laid end to end, ends from valueEnds), in order, skipping empty ones.
func spans(params []Param, ends []int, lo, hi int, fn func(i, lo, hi int)) {
	for i := sort.SearchInts(ends, lo+1); lo < hi; i++ {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		e := min(hi, ends[i])
		if e > lo {
			fn(i, lo-start, e-start)
		}
		lo = e
	}
}

// Param is one trainable tensor: its values and their gradient (same length). Data
// may be changed freely between forward passes (an optimiser step): models read the
// current values at every call.
type Param struct {
	Name  string // e.g. the PEFT key base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
	Shape []int  // row-major; the product is len(Data)
	Data  []float32
	Grad  []float32
	// NoDecay exempts the tensor from weight decay.
	NoDecay bool
}

// Optimizer updates parameters from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr to params (always the same list,
	// in the same order).
	Step(params []Param, lr float64)
	// State returns the optimiser's state tensors by name, for checkpoints. The slices
	// are the live state: save them before the next Step.
	State() map[string][]float32
	// SetState restores what State returned (copying it) for the given params; it
	// refuses a state whose tensors do not match them in number and size (a
	// checkpoint of a different adapter).
	SetState(s map[string][]float32, params []Param) error
	// Steps is the number of updates applied.
	Steps() int
}

// AdamW is Adam with decoupled weight decay and bias correction (Loshchilov & Hutter),
// exactly as torch.optim.AdamW: p ← p − lr·wd·p; m ← β1 m + (1−β1) g;
// v ← β2 v + (1−β2) g²; p ← p − lr · m̂ / (√v̂ + ε).
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64

	t    int
	m, v [][]float32
}

// NewAdamW returns AdamW with PyTorch's defaults for betas and eps.
func NewAdamW(weightDecay float64) *AdamW {
	return &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay}
}

func (o *AdamW) Step(params []Param, lr float64) {
	if o.m == nil {
		o.m, o.v = make([][]float32, len(params)), make([][]float32, len(params))
		for i, p := range params {
			o.m[i], o.v[i] = make([]float32, len(p.Data)), make([]float32, len(p.Data))
		}
	}
	o.t++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.t))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.t))
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	stepSize := float32(lr / bc1)
	sqrtBC2 := float32(math.Sqrt(bc2))
	eps := float32(o.Eps)
	parallelValues(params, func(i, lo, hi int) {
		p := params[i]
		decay := float32(1)
		if !p.NoDecay {
			decay = float32(1 - lr*o.WeightDecay)
		}
		m, v := o.m[i][lo:hi], o.v[i][lo:hi]
		data := p.Data[lo:hi]
		for j, g := range p.Grad[lo:hi] {
			m[j] = b1*m[j] + (1-b1)*g
			v[j] = b2*v[j] + (1-b2)*g*g
			denom := float32(math.Sqrt(float64(v[j])))/sqrtBC2 + eps
			data[j] = data[j]*decay - stepSize*m[j]/denom
		}
	})
}

func (o *AdamW) Steps() int { return o.t }

func (o *AdamW) State() map[string][]float32 {
	s := map[string][]float32{"step": {float32(o.t)}}
	for i := range o.m {
		s[fmt.Sprintf("exp_avg.%d", i)] = o.m[i]
		s[fmt.Sprintf("exp_avg_sq.%d", i)] = o.v[i]
	}
	return s
}

func (o *AdamW) SetState(s map[string][]float32, params []Param) error {
	step, ok := s["step"]
	if !ok || len(step) != 1 {
		return fmt.Errorf("optimizer state: missing step")
	}
	o.t = int(step[0])
	o.m, o.v = nil, nil
	for i := 0; ; i++ {
		m, okm := s[fmt.Sprintf("exp_avg.%d", i)]
		v, okv := s[fmt.Sprintf("exp_avg_sq.%d", i)]
		if !okm && !okv {
			break
		}
		if !okm || !okv || len(m) != len(v) {
			return fmt.Errorf("optimizer state: moments of parameter %d are incomplete", i)
		}
		if err := checkStateSize(i, len(m), params); err != nil {
			return err
		}
		o.m, o.v = append(o.m, slices.Clone(m)), append(o.v, slices.Clone(v))
	}
	if len(o.m) != 0 && len(o.m) != len(params) {
		n := len(o.m)
		o.m, o.v = nil, nil
		return &StateMismatchError{Tensors: n, Params: len(params)}
	}
	return nil
}

// StateMismatchError reports optimiser state that belongs to other parameters.
type StateMismatchError struct {
	Tensors, Params int // how many parameters the state has and the run has
	Index, Size     int // with Tensors == Params: the first parameter whose size differs
	Want            int
}

func (e *StateMismatchError) Error() string {
	if e.Tensors != e.Params {
		return fmt.Sprintf("optimizer state: it holds %d parameters, the adapter has %d", e.Tensors, e.Params)
	}
	return fmt.Sprintf("optimizer state: parameter %d has %d values, the adapter's has %d", e.Index, e.Size, e.Want)
}

func checkStateSize(i, n int, params []Param) error {
	if i >= len(params) {
		return &StateMismatchError{Tensors: i + 1, Params: len(params)}
	}
	if n != len(params[i].Data) {
		return &StateMismatchError{Tensors: len(params), Params: len(params), Index: i, Size: n, Want: len(params[i].Data)}
	}
	return nil
}

// SGD is plain stochastic gradient descent with optional momentum and (coupled, as in
// torch.optim.SGD) weight decay.
type SGD struct {
	Momentum, WeightDecay float64

	t   int
	buf [][]float32
}

func (o *SGD) Step(params []Param, lr float64) {
	o.t++
	var first []bool // parameters whose momentum buffer starts now
	if o.Momentum != 0 {
		if o.buf == nil {
			o.buf = make([][]float32, len(params))
		}
		first = make([]bool, len(params))
		for i, p := range params {
			if o.buf[i] == nil { // first step: the buffer starts as the gradient itself
				o.buf[i] = make([]float32, len(p.Data))
				first[i] = true
			}
		}
	}
	parallelValues(params, func(i, lo, hi int) {
		p := params[i]
		wd := float32(o.WeightDecay)
		if p.NoDecay {
			wd = 0
		}
		var buf []float32
		mom := float32(o.Momentum)
		if o.Momentum != 0 {
			buf = o.buf[i][lo:hi]
			if first[i] {
				mom = 0
			}
		}
		data := p.Data[lo:hi]
		for j, g := range p.Grad[lo:hi] {
			d := g + wd*data[j]
			if buf != nil {
				buf[j] = mom*buf[j] + d
				d = buf[j]
			}
			data[j] -= float32(lr) * d
		}
	})
}

func (o *SGD) Steps() int { return o.t }

func (o *SGD) State() map[string][]float32 {
	s := map[string][]float32{"step": {float32(o.t)}}
	for i, b := range o.buf {
		s[fmt.Sprintf("momentum_buffer.%d", i)] = b
	}
	return s
}

func (o *SGD) SetState(s map[string][]float32, params []Param) error {
	step, ok := s["step"]
	if !ok || len(step) != 1 {
		return fmt.Errorf("optimizer state: missing step")
	}
	o.t = int(step[0])
	o.buf = nil
	for i := 0; ; i++ {
		b, ok := s[fmt.Sprintf("momentum_buffer.%d", i)]
		if !ok {
			break
		}
		if b != nil {
			if err := checkStateSize(i, len(b), params); err != nil {
				return err
			}
		}
		o.buf = append(o.buf, slices.Clone(b))
	}
	if len(o.buf) != 0 && len(o.buf) != len(params) {
		n := len(o.buf)
		o.buf = nil
		return &StateMismatchError{Tensors: n, Params: len(params)}
	}
	return nil
}

// normChunk is the number of values whose squares one partial sum of GradNorm
// holds. It is a constant, not derived from the thread count, so the norm is the
// same bit for bit whatever --threads is (a resumed run replays the same steps).
const normChunk = 1 << 14

// GradNorm returns the global L2 norm of all gradients of params. The squares are
// summed in float64 over fixed chunks of normChunk values (the gradients laid end to
// end), the chunks in parallel, and the chunk sums are added in chunk order: the
// result does not depend on the number of threads.
func GradNorm(params []Param) float64 {
	ends, total := valueEnds(params, true)
	partial := make([]float64, (total+normChunk-1)/normChunk)
	kernels.Parallel(len(partial), 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var acc [4]float64
			spans(params, ends, c*normChunk, min((c+1)*normChunk, total), func(i, lo, hi int) {
				sumSquares(&acc, params[i].Grad[lo:hi])
			})
			partial[c] = (acc[0] + acc[1]) + (acc[2] + acc[3])
		}
	})
	var ss float64
	for _, v := range partial {
		ss += v
	}
	return math.Sqrt(ss)
}

// sumSquares adds the squares of g (in float64) to four running sums, value j to
// sum j mod 4 of the slice: four independent chains instead of one long one.
func sumSquares(acc *[4]float64, g []float32) {
	j := 0
	for ; j+4 <= len(g); j += 4 {
		a, b, c, d := float64(g[j]), float64(g[j+1]), float64(g[j+2]), float64(g[j+3])
		acc[0] += a * a
		acc[1] += b * b
		acc[2] += c * c
		acc[3] += d * d
	}
	for ; j < len(g); j++ {
		v := float64(g[j])
		acc[0] += v * v
	}
}

// ScaleGrads multiplies every gradient value of params by c, in parallel.
func ScaleGrads(params []Param, c float32) {
	parallelGrads(params, func(g []float32) {
		for j := range g {
			g[j] *= c
		}
	})
}

// ZeroGrads sets every gradient value of params to zero, in parallel.
func ZeroGrads(params []Param) {
	parallelGrads(params, func(g []float32) { clear(g) })
}

// parallelGrads runs fn on pieces of the gradients of params, every value once,
// spread over the kernel threads by value count.
func parallelGrads(params []Param, fn func(g []float32)) {
	ends, total := valueEnds(params, true)
	kernels.Parallel(total, stepGrain, func(lo, hi int) {
		spans(params, ends, lo, hi, func(i, lo, hi int) { fn(params[i].Grad[lo:hi]) })
	})
}

// ClipGradNorm scales all gradients so that their global L2 norm is at most maxNorm
// (as torch.nn.utils.clip_grad_norm_, coefficient maxNorm/(norm+1e-6)) and returns
// the norm before clipping (GradNorm: independent of the thread count). maxNorm ≤ 0
// only measures. Both passes run on the kernel threads.
func ClipGradNorm(params []Param, maxNorm float64) float64 {
	norm := GradNorm(params)
	if maxNorm > 0 {
		if c := maxNorm / (norm + 1e-6); c < 1 {
			ScaleGrads(params, float32(c))
		}
	}
	return norm
}
