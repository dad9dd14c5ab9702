package train

import (
	"context"
	"fmt"
	"math"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/optim"
)

// Stepper is a training method: what one optimiser step does, and the state it needs
// in a checkpoint to continue bit for bit.
//
// Step must change nothing (parameters, optimiser state) until it can no longer be
// cancelled: if it returns an error, the loop treats the model as it was after the
// previous step. A cancellation during the forward/backward passes of a step is
// therefore honoured at once; once a stepper starts updating, it finishes the step.
type Stepper interface {
	// Begin is called once when the phase starts (not when a run resumes into it).
	Begin() error
	// Step makes one optimiser step from s.Group. Stats.Tokens == 0 means the group
	// had nothing to learn from and nothing was changed.
	Step(ctx context.Context, s *Step) (Stats, error)
	// State returns the tensors a checkpoint must hold (optimiser moments, …) besides
	// the adapter, by name.
	State() map[string][]float32
	// SetState restores what State returned; it refuses state that does not fit.
	SetState(tensors map[string][]float32) error
}

// Step is what the loop hands a Stepper.
type Step struct {
	Phase, Global int             // optimiser steps done so far in the phase and in the run
	Group         []dataset.Batch // the micro-batches of this step
	LR            float64         // the schedule's learning rate for this step
	Schedule      optim.Schedule  // the phase's schedule (for steppers with further rates)
	Seed          uint64          // dropout seed of the step; micro-batch i uses Seed^i
}

// Stats is what a step reports.
type Stats struct {
	Loss     float64 // token-weighted mean training loss of the group
	Tokens   int     // tokens that carried loss
	GradNorm float64 // gradient norm before clipping
	// Extra holds method-specific metrics (BiDoRA's upper_loss, …), written into
	// metrics.jsonl beside the common ones.
	Extra map[string]float64
}

// AccumulateGrad clears every gradient, runs forward and backward over the
// micro-batches of group (micro-batch i with dropout seed seed^i) and scales the
// gradients to those of the token-weighted mean loss over the whole group. It returns
// that mean loss and the token count (0, 0 when no label carries loss).
func AccumulateGrad(ctx context.Context, m Model, group []dataset.Batch, seed uint64) (float64, int, error) {
	params := m.Params()
	optim.ZeroGrads(params) // on the kernel threads: these loops grow with the adapter
	var lossSum float64
	tokens := 0
	for i := range group {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		m.SetDropoutSeed(seed ^ uint64(i))
		l, n, err := m.LossAndGrad(ctx, &group[i])
		if err != nil {
			return 0, 0, err
		}
		lossSum += l
		tokens += n
	}
	if tokens == 0 {
		return 0, 0, nil
	}
	optim.ScaleGrads(params, float32(1/float64(tokens)))
	loss := lossSum / float64(tokens)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, tokens, &NonFiniteLossError{Loss: loss}
	}
	return loss, tokens, nil
}

// NonFiniteLossError reports a loss that is NaN or infinite; the step that produced
// it has not been applied.
type NonFiniteLossError struct{ Loss float64 }

func (e *NonFiniteLossError) Error() string {
	return fmt.Sprintf("loss is %v; the step was not applied (a lower learning rate or a look at the data may help)", e.Loss)
}

// Plain is supervised fine-tuning of every adapter parameter (LoRA, rsLoRA, DoRA):
// the token-weighted mean loss over the group, gradient clipping, one optimiser step.
type Plain struct {
	Model       Model
	Opt         optim.Optimizer
	MaxGradNorm float64
}

// NewPlain returns the plain stepper with a fresh optimiser of o's kind.
func NewPlain(m Model, o *Options) *Plain {
	return &Plain{Model: m, Opt: o.NewOptimizer(), MaxGradNorm: o.MaxGradNorm}
}

// Begin does nothing: the adapter starts as attached.
func (p *Plain) Begin() error { return nil }

// Step runs the group and applies one optimiser step.
func (p *Plain) Step(ctx context.Context, s *Step) (Stats, error) {
	loss, tokens, err := AccumulateGrad(ctx, p.Model, s.Group, s.Seed)
	if err != nil || tokens == 0 {
		return Stats{}, err
	}
	params := p.Model.Params()
	norm := optim.ClipGradNorm(params, p.MaxGradNorm)
	p.Opt.Step(params, s.LR)
	return Stats{Loss: loss, Tokens: tokens, GradNorm: norm}, nil
}

// State is the optimiser's state.
func (p *Plain) State() map[string][]float32 { return p.Opt.State() }

// SetState restores the optimiser's state.
func (p *Plain) SetState(t map[string][]float32) error { return p.Opt.SetState(t, p.Model.Params()) }
