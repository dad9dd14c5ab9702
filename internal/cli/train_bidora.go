package cli

import (
	"fmt"
	"strings"

	"github.com/bidora/bidora/bilevel"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/train"
)

// bidoraPhases maps `train --method bidora` onto package bilevel: its data policy
// (the outer split is a seeded --outer-split share of the training rows, whole source
// files at a time for --train-dir data; validation data is only evaluated), its
// options, and the phases the loop runs.
func (r *trainRun) bidoraPhases(stdio *IO, opts *train.Options) ([]train.Phase, error) {
	cfg := r.cfg
	var group func(*dataset.Example) string
	if len(cfg.TrainDir) > 0 {
		group = sourceFile
	}
	d, err := bilevel.SplitDataBy(r.trainEx, cfg.OuterSplit, uint64(cfg.Seed), group)
	if err != nil {
		return nil, trainError(err)
	}
	if d.Groups > 0 {
		fmt.Fprintf(stdio.Err, "bidora: seeded %.0f/%.0f split of the %d source files (whole files): direction (lower level) on %d examples, magnitudes (upper level) on %d; validation data is only evaluated\n",
			100*(1-cfg.OuterSplit), 100*cfg.OuterSplit, d.Groups, len(d.Inner), len(d.Outer))
	} else {
		fmt.Fprintf(stdio.Err, "bidora: seeded %.0f/%.0f split of the %d training examples: direction (lower level) on %d, magnitudes (upper level) on %d; validation data is only evaluated\n",
			100*(1-cfg.OuterSplit), 100*cfg.OuterSplit, len(r.trainEx), len(d.Inner), len(d.Outer))
	}
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

// sourceFile is the file an example was cut from: the path of a source-tree chunk's
// "path:first-last", or the whole Source for anything else (a data row's "file:line"
// is its own group).
func sourceFile(e *dataset.Example) string {
	if i := strings.LastIndexByte(e.Source, ':'); i > 0 && strings.Contains(e.Source[i+1:], "-") {
		return e.Source[:i]
	}
	return e.Source
}
