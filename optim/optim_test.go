package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func randParams(seed uint64, sizes ...int) []Param {
	r := rand.New(rand.NewPCG(seed, 1))
	var ps []Param
	for _, n := range sizes {
		p := Param{Data: make([]float32, n), Grad: make([]float32, n)}
		for i := range p.Data {
			p.Data[i] = float32(r.NormFloat64())
		}
		ps = append(ps, p)
	}
	return ps
}

func fillGrads(ps []Param, r *rand.Rand) {
	for _, p := range ps {
		for i := range p.Grad {
			p.Grad[i] = float32(r.NormFloat64() * 0.1)
		}
	}
}

// TestAdamWMatchesFormula runs AdamW for several steps next to a float64 transcription
// of torch.optim.AdamW's update.
func TestAdamWMatchesFormula(t *testing.T) {
	ps := randParams(1, 7, 1, 33)
	ps[1].NoDecay = true
	ref := make([][]float64, len(ps))
	m := make([][]float64, len(ps))
	v := make([][]float64, len(ps))
	for i, p := range ps {
		for _, x := range p.Data {
			ref[i] = append(ref[i], float64(x))
		}
		m[i], v[i] = make([]float64, len(p.Data)), make([]float64, len(p.Data))
	}
	o := NewAdamW(0.01)
	r := rand.New(rand.NewPCG(2, 2))
	for step := 1; step <= 5; step++ {
		fillGrads(ps, r)
		lr := 1e-2 * float64(step)
		o.Step(ps, lr)
		for i, p := range ps {
			wd := 0.01
			if p.NoDecay {
				wd = 0
			}
			for j := range ref[i] {
				g := float64(p.Grad[j])
				ref[i][j] *= 1 - lr*wd
				m[i][j] = 0.9*m[i][j] + 0.1*g
				v[i][j] = 0.999*v[i][j] + 0.001*g*g
				mh := m[i][j] / (1 - math.Pow(0.9, float64(step)))
				vh := v[i][j] / (1 - math.Pow(0.999, float64(step)))
				ref[i][j] -= lr * mh / (math.Sqrt(vh) + 1e-8)
				if d := math.Abs(float64(p.Data[j]) - ref[i][j]); d > 1e-5*(1+math.Abs(ref[i][j])) {
					t.Fatalf("step %d param %d[%d]: %v vs %v", step, i, j, p.Data[j], ref[i][j])
				}
			}
		}
	}
	if o.Steps() != 5 {
		t.Fatal(o.Steps())
	}
}

func TestAdamWStateRoundTrip(t *testing.T) {
	a, b := randParams(3, 5, 4), randParams(3, 5, 4)
	r1, r2 := rand.New(rand.NewPCG(9, 9)), rand.New(rand.NewPCG(9, 9))
	oa := NewAdamW(0.1)
	fillGrads(a, r1)
	oa.Step(a, 0.1)
	ob := NewAdamW(0.1)
	fillGrads(b, r2)
	ob.Step(b, 0.1)
	// Restore b's optimiser from a's state into a fresh AdamW, then step both.
	oc := NewAdamW(0.1)
	if err := oc.SetState(oa.State(), b); err != nil {
		t.Fatal(err)
	}
	fillGrads(a, r1)
	oa.Step(a, 0.1)
	fillGrads(b, r2)
	oc.Step(b, 0.1)
	for i := range a {
		for j := range a[i].Data {
			if a[i].Data[j] != b[i].Data[j] {
				t.Fatalf("resumed optimiser differs at %d/%d", i, j)
			}
		}
	}
	if err := oc.SetState(map[string][]float32{}, b); err == nil {
		t.Fatal("empty state accepted")
	}
	// A state made for other parameters (another rank, fewer targets) is refused
	// instead of panicking in the next Step.
	for _, other := range [][]Param{randParams(3, 5), randParams(3, 5, 4, 2), randParams(3, 5, 6)} {
		var e *StateMismatchError
		if err := NewAdamW(0.1).SetState(oa.State(), other); !errors.As(err, &e) {
			t.Errorf("AdamW state of %d params set on %d params: err %v", len(a), len(other), err)
		}
	}
	sgd := &SGD{Momentum: 0.9}
	fillGrads(a, r1)
	sgd.Step(a, 0.1)
	var e *StateMismatchError
	if err := (&SGD{Momentum: 0.9}).SetState(sgd.State(), randParams(3, 5, 7)); !errors.As(err, &e) {
		t.Errorf("SGD state on other params: err %v", err)
	}
}

func TestSGD(t *testing.T) {
	ps := []Param{{Data: []float32{1, 2}, Grad: []float32{0.5, -1}}}
	(&SGD{}).Step(ps, 0.1)
	if ps[0].Data[0] != 0.95 || ps[0].Data[1] != 2.1 {
		t.Fatal(ps[0].Data)
	}
	// Momentum 0.9: buffers g, then 0.9·g + g.
	ps = []Param{{Data: []float32{1}, Grad: []float32{1}}}
	o := &SGD{Momentum: 0.9}
	o.Step(ps, 0.1)
	o.Step(ps, 0.1)
	if got, want := ps[0].Data[0], float32(1-0.1-0.19); math.Abs(float64(got-want)) > 1e-6 {
		t.Fatalf("momentum: %v want %v", got, want)
	}
}

func TestClipGradNorm(t *testing.T) {
	ps := []Param{{Grad: []float32{3, 0}}, {Grad: []float32{4}}}
	if n := ClipGradNorm(ps, 0); n != 5 || ps[0].Grad[0] != 3 {
		t.Fatal("measure-only changed grads or norm wrong", n)
	}
	if n := ClipGradNorm(ps, 10); n != 5 || ps[1].Grad[0] != 4 {
		t.Fatal("clipping below the limit changed grads")
	}
	ClipGradNorm(ps, 1)
	if n := ClipGradNorm(ps, 0); math.Abs(n-1) > 1e-5 {
		t.Fatalf("clipped norm %v", n)
	}
}

func TestSchedules(t *testing.T) {
	for _, tc := range []struct {
		s    Schedule
		step int
		want float64
	}{
		{Schedule{"cosine", 1, 10, 110}, 0, 0},
		{Schedule{"cosine", 1, 10, 110}, 5, 0.5},
		{Schedule{"cosine", 1, 10, 110}, 10, 1},
		{Schedule{"cosine", 1, 10, 110}, 60, 0.5},
		{Schedule{"cosine", 1, 10, 110}, 110, 0},
		{Schedule{"linear", 2, 0, 100}, 25, 1.5},
		{Schedule{"linear", 2, 0, 100}, 200, 0},
		{Schedule{"constant", 3, 4, 100}, 2, 1.5},
		{Schedule{"constant", 3, 4, 100}, 99, 3},
	} {
		if got := tc.s.LR(tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%+v LR(%d) = %v, want %v", tc.s, tc.step, got, tc.want)
		}
	}
	if err := (Schedule{Kind: "step"}).Validate(); err == nil {
		t.Fatal("bad kind accepted")
	}
}
