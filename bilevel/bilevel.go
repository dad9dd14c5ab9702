// Package bilevel is the BiDoRA recipe (Qin, Zhang, Xie, TMLR 2025): a DoRA adapter
// whose direction (lora_A, lora_B) and magnitude (lora_magnitude_vector) are
// optimised at two levels on disjoint data. It plugs into package train's loop as two
// phases; this package holds only the recipe: the data split, the lower and upper
// steps, the hypergradient and the orthogonality regulariser's use.
//
// Search phase: each step is one lower step, AdamW on the direction with the mean
// training loss of the inner split plus the orthogonality regulariser
// λ·mean_k ‖D_k D_kᵀ − I‖_F, then one upper step, a separate AdamW (learning rate ×
// UpperLRMult) on the magnitudes with the hypergradient of the mean loss on the outer
// split (see Hypergradient). Retraining phase (unless NoRetrain): the magnitudes m*
// are frozen, the direction restarts from its initial values with a fresh optimiser
// and trains on the retraining data (all training rows) for the configured epochs.
// Both splits come from the training rows (SplitData); validation data is only
// evaluated, as in the reference implementation.
// The formulas are written out in docs/architecture.md.
package bilevel

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/train"
)

// Phase names, as logged in metrics.jsonl.
const (
	PhaseSearch  = "search"
	PhaseRetrain = "retrain"
)

// Model is what BiDoRA needs: a trainable model with a DoRA adapter that also
// computes the orthogonality regulariser (*model.Model implements it). OrthReg adds
// λ·∇R into the direction's gradients and returns R; rows > 0 asks for a row-sampled
// estimate seeded by seed.
type Model interface {
	train.Model
	OrthReg(lambda float64, rows int, seed uint64) float64
}

// Options are the BiDoRA hyper-parameters on top of the loop's.
type Options struct {
	// UpperLRMult scales the learning rate for the magnitudes (0: 2).
	UpperLRMult float64
	// OrthReg is λ of the orthogonality regulariser (0: none).
	OrthReg float64
	// OrthRows is the number of rows per adapted matrix sampled for the regulariser's
	// estimate each step (0: exact).
	OrthRows int
	// FirstOrder drops the second-order term of the hypergradient.
	FirstOrder bool
	// FDRadius is R in ε = R/‖v‖ (0: 0.01).
	FDRadius float64
	// NoRetrain skips the retraining phase.
	NoRetrain bool
}

// DefaultOrthRows is the regulariser's row sample used by the command line.
const DefaultOrthRows = 32

// DefaultOuterSplit is the share of the training rows that becomes the outer
// (magnitude) split by default.
const DefaultOuterSplit = 0.2

// Data are the example sets of a run.
type Data struct {
	Inner   []dataset.Example // lower level: the direction
	Outer   []dataset.Example // upper level: the magnitudes
	Retrain []dataset.Example // retraining phase (typically all training data)
	Groups  int               // groups split by SplitDataBy (0: split by example)
}

// SplitData is the recipe's data policy: a seeded outerSplit share of the training
// rows becomes the outer (magnitude) split, the rest the inner (direction) split, and
// the retraining phase uses both. Validation data never enters: it is only evaluated,
// so the validation loss stays held out and what is learned never depends on it.
func SplitData(trainEx []dataset.Example, outerSplit float64, seed uint64) (Data, error) {
	return SplitDataBy(trainEx, outerSplit, seed, nil)
}

// SplitDataBy is SplitData with examples kept together by group (for examples cut
// from source files: the file), so that the magnitudes are fitted on files the
// direction never saw, as a held-out split should be: a seeded outerSplit share of
// the groups, with every example of each, becomes the outer split. group returns an
// example's group; nil, or fewer than two groups, splits by example as SplitData
// does. Data.Groups says how many groups were split (0 when split by example).
func SplitDataBy(trainEx []dataset.Example, outerSplit float64, seed uint64, group func(*dataset.Example) string) (Data, error) {
	var d Data
	var names []string
	if group != nil {
		index := map[string]int{}
		for i := range trainEx {
			g := group(&trainEx[i])
			if _, ok := index[g]; !ok {
				index[g] = len(names)
				names = append(names, g)
			}
		}
		if len(names) < 2 {
			names = nil
		}
	}
	if names == nil {
		d.Inner, d.Outer = dataset.Split(trainEx, outerSplit, seed^0xb1)
	} else {
		_, outer := dataset.Split(names, outerSplit, seed^0xb1)
		isOuter := make(map[string]bool, len(outer))
		for _, g := range outer {
			isOuter[g] = true
		}
		for i := range trainEx {
			if isOuter[group(&trainEx[i])] {
				d.Outer = append(d.Outer, trainEx[i])
			} else {
				d.Inner = append(d.Inner, trainEx[i])
			}
		}
		d.Groups = len(names)
	}
	d.Retrain = append(append([]dataset.Example(nil), d.Inner...), d.Outer...)
	if len(d.Inner) == 0 || len(d.Outer) == 0 {
		return d, &DataError{Train: len(trainEx)}
	}
	return d, nil
}

// DataError is training data too small to split into inner and outer rows.
type DataError struct {
	Train int // training rows
}

func (e *DataError) Error() string {
	return fmt.Sprintf("BiDoRA needs at least 2 training examples to split into direction (inner) and magnitude (outer) rows, got %d", e.Train)
}

// Phases returns the loop's phases for a BiDoRA run of m on d: the search phase and,
// unless NoRetrain, the retraining phase. The adapter must be a DoRA adapter.
func Phases(m Model, d Data, o Options, to *train.Options) ([]train.Phase, error) {
	if o.UpperLRMult == 0 {
		o.UpperLRMult = 2
	}
	if o.FDRadius == 0 {
		o.FDRadius = 0.01
	}
	switch {
	case !(o.UpperLRMult > 0):
		return nil, &train.OptionError{Field: "UpperLRMult", Value: fmt.Sprint(o.UpperLRMult), Want: "> 0"}
	case o.OrthReg < 0:
		return nil, &train.OptionError{Field: "OrthReg", Value: fmt.Sprint(o.OrthReg), Want: "≥ 0"}
	case o.FDRadius < 0:
		return nil, &train.OptionError{Field: "FDRadius", Value: fmt.Sprint(o.FDRadius), Want: "≥ 0"}
	case len(d.Inner) == 0 || len(d.Outer) == 0 || !o.NoRetrain && len(d.Retrain) == 0:
		return nil, &DataError{Train: len(d.Inner) + len(d.Outer)}
	}
	r := &recipe{m: m, o: o, to: to, outer: d.Outer}
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, "lora_magnitude_vector") {
			r.mag = append(r.mag, p)
		} else {
			r.dir = append(r.dir, p)
		}
	}
	if len(r.mag) == 0 || len(r.dir) == 0 {
		return nil, errors.New("BiDoRA needs a DoRA adapter (lora_A, lora_B and lora_magnitude_vector parameters)")
	}
	for _, p := range r.mag {
		r.magGrad = append(r.magGrad, make([]float32, len(p.Grad)))
	}
	r.outerOpts = dataset.BatchOptions{BatchSize: to.BatchSize, Seed: to.Seed ^ 0x0a7e5, GroupByLength: to.GroupByLen, Pack: to.Packing, MaxSeqLen: to.MaxSeqLen}
	phases := []train.Phase{{Name: PhaseSearch, Data: d.Inner, Stepper: &search{r}}}
	if !o.NoRetrain {
		phases = append(phases, train.Phase{Name: PhaseRetrain, Data: d.Retrain, Stepper: &retrain{r: r}})
	}
	return phases, nil
}

// Result summarises a run.
type Result struct {
	train.Result
	SearchSteps, RetrainSteps int
	FinalUpperLoss            float64
}

// Run trains m with BiDoRA through package train's loop: Phases, then train.Run with
// eval as the validation set.
func Run(ctx context.Context, m Model, d Data, eval []dataset.Example, o Options, to train.Options) (*Result, error) {
	phases, err := Phases(m, d, o, &to)
	if err != nil {
		return nil, err
	}
	tr, err := train.Run(ctx, m, phases, eval, to)
	if tr == nil {
		return nil, err
	}
	res := &Result{Result: *tr, SearchSteps: tr.PhaseSteps[PhaseSearch], RetrainSteps: tr.PhaseSteps[PhaseRetrain]}
	for _, h := range tr.History {
		if v, ok := h.Extra["upper_loss"]; ok {
			res.FinalUpperLoss = v
		}
	}
	return res, err
}

// Steps returns the optimiser steps of the search and retraining phases.
func Steps(d Data, o Options, to train.Options) (search, retrain int) {
	search = to.StepsFor(d.Inner)
	if !o.NoRetrain {
		retrain = to.StepsFor(d.Retrain)
	}
	return search, retrain
}

// PlotSeries are the extra metrics worth drawing beside the losses.
var PlotSeries = []string{"upper_loss"}

// recipe is the state both phases share.
type recipe struct {
	m         Model
	o         Options
	to        *train.Options
	dir, mag  []optim.Param
	lowerOpt  optim.Optimizer // search phase: the direction's
	upperOpt  optim.Optimizer // search phase: the magnitudes'
	init      [][]float32     // the direction the retraining restarts from
	magGrad   [][]float32
	outer     []dataset.Example
	outerOpts dataset.BatchOptions
	// The upper level walks the outer split's epochs on its own.
	outerEpoch, outerBatch int
	outerBatches           []dataset.Batch // of outerEpoch (cached)
	outerBatchesEpoch      int
}

// lowerStep is the direction's step: training loss + regulariser, clip, opt.
func (r *recipe) lowerStep(ctx context.Context, s *train.Step, opt optim.Optimizer) (train.Stats, error) {
	loss, tokens, err := train.AccumulateGrad(ctx, r.m, s.Group, s.Seed)
	if err != nil || tokens == 0 {
		return train.Stats{}, err
	}
	st := train.Stats{Loss: loss, Tokens: tokens, Extra: map[string]float64{"lower_loss": loss}}
	if r.o.OrthReg > 0 {
		st.Extra["reg_loss"] = r.m.OrthReg(r.o.OrthReg, r.o.OrthRows, s.Seed^0x5eed)
	}
	st.GradNorm = optim.ClipGradNorm(r.dir, r.to.MaxGradNorm)
	opt.Step(r.dir, s.LR)
	return st, nil
}

// nextOuter returns the next upper-level group, cycling through epochs of the outer
// split.
func (r *recipe) nextOuter() []dataset.Batch {
	for {
		if r.outerBatches == nil || r.outerBatchesEpoch != r.outerEpoch {
			r.outerBatches, r.outerBatchesEpoch = dataset.EpochBatches(r.outer, r.outerEpoch, r.outerOpts), r.outerEpoch
		}
		if r.outerBatch < len(r.outerBatches) {
			g := r.outerBatches[r.outerBatch:min(r.outerBatch+r.to.GradAccum, len(r.outerBatches))]
			r.outerBatch += len(g)
			return g
		}
		r.outerEpoch, r.outerBatch = r.outerEpoch+1, 0
	}
}
