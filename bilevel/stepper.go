package bilevel

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/train"
)

// search is the search phase's stepper: a lower step on the direction, then an upper
// step on the magnitudes through the hypergradient at the updated direction.
type search struct{ r *recipe }

var _ train.Stepper = (*search)(nil)

func (s *search) Begin() error {
	r := s.r
	r.init = r.init[:0]
	for _, p := range r.dir {
		r.init = append(r.init, slices.Clone(p.Data))
	}
	r.lowerOpt, r.upperOpt = r.to.NewOptimizer(), r.to.NewOptimizer()
	return nil
}

func (s *search) Step(ctx context.Context, st *train.Step) (train.Stats, error) {
	r := s.r
	stats, err := r.lowerStep(ctx, st, r.lowerOpt)
	if err != nil || stats.Tokens == 0 {
		return stats, err
	}
	// The direction has moved: from here the step runs to its end.
	ctx = context.WithoutCancel(ctx)
	outer := r.nextOuter()
	lv := Levels[float32]{
		UpperGrad: func(ctx context.Context) (float64, error) {
			l, _, err := train.AccumulateGrad(ctx, r.m, outer, st.Seed^1<<19)
			return l, err
		},
		LowerGrad: func(ctx context.Context) error {
			_, _, err := train.AccumulateGrad(ctx, r.m, st.Group, st.Seed)
			return err
		},
	}
	for _, p := range r.dir {
		lv.Dir, lv.DirGrad = append(lv.Dir, p.Data), append(lv.DirGrad, p.Grad)
	}
	for _, p := range r.mag {
		lv.MagGrad = append(lv.MagGrad, p.Grad)
	}
	hs, err := Hypergradient(ctx, lv, r.o.FDRadius, r.o.FirstOrder, r.magGrad)
	if err != nil {
		return train.Stats{}, fmt.Errorf("upper level: %w", err)
	}
	for i, p := range r.mag {
		copy(p.Grad, r.magGrad[i])
	}
	upperSched := st.Schedule
	upperSched.Base *= r.o.UpperLRMult
	upperLR := upperSched.LR(st.Phase)
	stats.Extra["upper_grad_norm"] = optim.ClipGradNorm(r.mag, r.to.MaxGradNorm)
	stats.Extra["upper_lr"] = upperLR
	r.upperOpt.Step(r.mag, upperLR)
	stats.Extra["upper_loss"] = hs.UpperLoss
	if hs.Eps != 0 {
		stats.Extra["hyper_eps"] = hs.Eps
	}
	return stats, nil
}

// State holds both optimisers ("lower.*", "upper.*"), the initial direction
// ("init.<name>") and the outer split's position.
func (s *search) State() map[string][]float32 {
	r := s.r
	out := map[string][]float32{"outer_position": {float32(r.outerEpoch), float32(r.outerBatch)}}
	for k, v := range r.lowerOpt.State() {
		out["lower."+k] = v
	}
	for k, v := range r.upperOpt.State() {
		out["upper."+k] = v
	}
	for i, p := range r.dir {
		out["init."+p.Name] = r.init[i]
	}
	return out
}

func (s *search) SetState(t map[string][]float32) error {
	r := s.r
	lower, upper := prefixed(t, "lower."), prefixed(t, "upper.")
	r.lowerOpt, r.upperOpt = r.to.NewOptimizer(), r.to.NewOptimizer()
	if err := r.lowerOpt.SetState(lower, r.dir); err != nil {
		return fmt.Errorf("direction %w", err)
	}
	if err := r.upperOpt.SetState(upper, r.mag); err != nil {
		return fmt.Errorf("magnitude %w", err)
	}
	r.init = r.init[:0]
	for _, p := range r.dir {
		v, ok := t["init."+p.Name]
		if !ok || len(v) != len(p.Data) {
			return fmt.Errorf("initial direction %s is missing or has the wrong size (not a BiDoRA checkpoint of this adapter?)", p.Name)
		}
		r.init = append(r.init, slices.Clone(v))
	}
	pos := t["outer_position"]
	if len(pos) != 2 || pos[0] < 0 || pos[1] < 0 {
		return fmt.Errorf("outer_position is missing or invalid")
	}
	r.outerEpoch, r.outerBatch = int(pos[0]), int(pos[1])
	return nil
}

// retrain is the retraining phase's stepper: lower steps only, magnitudes frozen.
type retrain struct {
	r   *recipe
	opt optim.Optimizer
}

// Begin restarts the direction from its initial values with a fresh optimiser.
func (s *retrain) Begin() error {
	r := s.r
	if len(r.init) != len(r.dir) {
		return fmt.Errorf("retraining: the initial direction is unknown")
	}
	for i, p := range r.dir {
		copy(p.Data, r.init[i])
	}
	s.opt = r.to.NewOptimizer()
	return nil
}

func (s *retrain) Step(ctx context.Context, st *train.Step) (train.Stats, error) {
	return s.r.lowerStep(ctx, st, s.opt)
}

func (s *retrain) State() map[string][]float32 {
	out := map[string][]float32{}
	for k, v := range s.opt.State() {
		out["lower."+k] = v
	}
	return out
}

func (s *retrain) SetState(t map[string][]float32) error {
	s.opt = s.r.to.NewOptimizer()
	if err := s.opt.SetState(prefixed(t, "lower."), s.r.dir); err != nil {
		return fmt.Errorf("direction %w", err)
	}
	return nil
}

func prefixed(t map[string][]float32, prefix string) map[string][]float32 {
	out := map[string][]float32{}
	for k, v := range t {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}
