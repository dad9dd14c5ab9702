package cli

import (
	"fmt"

	"github.com/bidora/bidora/bilevel"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/train"
)

// bidoraPhases maps `train --method bidora` onto package bilevel: its data policy
// (the outer split is --val-file, else a seeded share of the training rows), its
// options, and the phases the loop runs.
func (r *trainRun) bidoraPhases(stdio *IO, opts *train.Options) ([]train.Phase, error) {
	cfg := r.cfg
	var outer []dataset.Example
	if cfg.ValFile != "" {
		if len(r.valEx) == 0 {
			return nil, usageErrorf("--val-file %s has no usable rows; --method bidora trains the magnitudes on it", cfg.ValFile)
		}
		outer = r.valEx
	}
	d, err := bilevel.SplitData(r.trainEx, outer, uint64(cfg.Seed))
	if err != nil {
		return nil, trainError(err)
	}
	if cfg.ValFile != "" {
		fmt.Fprintf(stdio.Err, "bidora: direction (lower level) on %d training examples, magnitudes (upper level) on --val-file %s (%d examples)\n",
			len(d.Inner), cfg.ValFile, len(d.Outer))
	} else {
		fmt.Fprintf(stdio.Err, "bidora: no --val-file: seeded %.0f/%.0f split of the training examples, direction (lower level) on %d, magnitudes (upper level) on %d\n",
			100*(1-bilevel.OuterSplit), 100*bilevel.OuterSplit, len(d.Inner), len(d.Outer))
	}
	if !cfg.NoRetrain {
		fmt.Fprintf(stdio.Err, "bidora: then retraining the direction on all %d training examples with the magnitudes frozen (--no-retrain skips)\n", len(d.Retrain))
	}
	bo := bilevel.Options{UpperLRMult: cfg.UpperLRMult, OrthReg: cfg.OrthReg, OrthRows: bilevel.DefaultOrthRows,
		FirstOrder: cfg.Hypergrad == "first-order", NoRetrain: cfg.NoRetrain}
	phases, err := bilevel.Phases(r.model, d, bo, opts)
	if err != nil {
		return nil, trainError(err)
	}
	return phases, nil
}
