package optim

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate for an optimiser step.
type Schedule struct {
	Kind   string // cosine, linear or constant
	Base   float64
	Warmup int // linear warm-up steps from 0 to Base
	Total  int // total optimiser steps
}

// Schedules lists the accepted kinds.
var Schedules = []string{"cosine", "linear", "constant"}

// Validate checks the kind and step counts.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "cosine", "linear", "constant":
	default:
		return fmt.Errorf("schedule kind %q: want cosine, linear or constant", s.Kind)
	}
	if s.Warmup < 0 || s.Total < 0 {
		return fmt.Errorf("schedule: warm-up %d and total %d steps must be ≥ 0", s.Warmup, s.Total)
	}
	return nil
}

// LR returns the learning rate for the update that follows `step` completed updates
// (step counts from 0), as HF transformers' schedules with warm-up: linear warm-up from
// 0, then cosine to 0, linear to 0, or constant.
func (s Schedule) LR(step int) float64 {
	if step < s.Warmup {
		return s.Base * float64(step) / float64(max(1, s.Warmup))
	}
	progress := float64(step-s.Warmup) / float64(max(1, s.Total-s.Warmup))
	switch s.Kind {
	case "cosine":
		return s.Base * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	case "linear":
		return s.Base * max(0, 1-progress)
	}
	return s.Base
}
