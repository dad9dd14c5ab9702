package cli

import (
	"fmt"

	"github.com/bidora/bidora/bilevel"
	"github.com/bidora/bidora/train"
)

// bidoraPhases maps `train --method bidora` onto package bilevel: its data policy
// (the outer split is a seeded --outer-split share of the training rows; validation
// data is only evaluated), its options, and the phases the loop runs.
func (r *trainRun) bidoraPhases(stdio *IO, opts *train.Options) ([]train.Phase, error) {
	cfg := r.cfg
	d, err := bilevel.SplitData(r.trainEx, cfg.OuterSplit, uint64(cfg.Seed))
	if err != nil {
		return nil, trainError(err)
	}
	fmt.Fprintf(stdio.Err, "bidora: seeded %.0f/%.0f split of the %d training examples: direction (lower level) on %d, magnitudes (upper level) on %d; validation data is only evaluated\n",
		100*(1-cfg.OuterSplit), 100*cfg.OuterSplit, len(r.trainEx), len(d.Inner), len(d.Outer))
	if !cfg.NoRetrain {
		fmt.Fprintf(stdio.Err, "bidora: then retraining the direction on all %d training examples with the magnitudes frozen (--no-retrain skips)\n", len(d.Retrain))
	}
	if cfg.MaxSteps > 0 {
		fmt.Fprintf(stdio.Err, "bidora: --max-steps %d bounds each phase\n", cfg.MaxSteps)
	}
	bo := bilevel.Options{UpperLRMult: cfg.UpperLRMult, OrthReg: cfg.OrthReg, OrthRows: bilevel.DefaultOrthRows,
		FirstOrder: cfg.Hypergrad == "first-order", NoRetrain: cfg.NoRetrain}
	phases, err := bilevel.Phases(r.model, d, bo, opts)
	if err != nil {
		return nil, trainError(err)
	}
	return phases, nil
}
