package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Resolve folds the aliases into their settings (--dora → --method dora,
// --warmup-ratio over --warmup-steps) and validates the whole configuration.
// All problems are returned joined; each is an *Error naming its flag or YAML
// key and line, the bad value and what is allowed.
func (t *Train) Resolve(o Origins) error {
	var errs []error
	bad := func(name string, value any, format string, args ...any) {
		errs = append(errs, &Error{Where: o.Where(name), Value: fmt.Sprint(value), Msg: fmt.Sprintf(format, args...)})
	}
	both := func(a, b, msg string) {
		errs = append(errs, &Error{Where: o.Where(a) + " and " + o.Where(b), Msg: msg})
	}

	if t.dora {
		if o.Explicit("method") && t.Method != "dora" {
			both(DoraFlag, "method", fmt.Sprintf("--dora means --method dora, but method is %s", t.Method))
		}
		t.Method = "dora"
		t.dora = false
	}

	enum := func(name, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			bad(name, v, "must be one of %s", strings.Join(allowed, ", "))
		}
	}
	enum("quantization", t.Quantization, Quantizations)
	enum("base-dtype", t.BaseDType, BaseDTypes)
	enum("method", t.Method, Methods)
	enum("lr-scheduler", t.LRScheduler, Schedulers)
	enum("optimizer", t.Optimizer, Optimizers)
	enum("template", t.Template, Templates)
	enum("log-format", t.LogFormat, LogFormats)
	enum("hypergrad", t.Hypergrad, Hypergrads)
	enum("fim-mode", t.FIMMode, FIMModes)
	enum("fim-loss", t.FIMLoss, FIMLosses)
	enum("compute", t.Compute, Computes)

	positive := func(name string, v int) {
		if v < 1 {
			bad(name, v, "must be a positive integer")
		}
	}
	nonNeg := func(name string, v int) {
		if v < 0 {
			bad(name, v, "must be 0 or more")
		}
	}
	positive("rank", t.Rank)
	positive("batch-size", t.BatchSize)
	positive("grad-accum", t.GradAccum)
	if t.MaxSeqLen < 16 {
		bad("max-seq-len", t.MaxSeqLen, "must be at least 16")
	}
	nonNeg("epochs", t.Epochs)
	nonNeg("max-steps", t.MaxSteps)
	nonNeg("warmup-steps", t.WarmupSteps)
	nonNeg("eval-steps", t.EvalSteps)
	nonNeg("save-steps", t.SaveSteps)
	nonNeg("save-total-limit", t.SaveTotalLimit)
	nonNeg("max-line-bytes", t.MaxLineBytes)
	nonNeg("max-samples", t.MaxSamples)
	nonNeg("threads", t.Threads)
	if t.Epochs == 0 && t.MaxSteps == 0 {
		both("epochs", "max-steps", "both are 0: give a number of epochs or of steps")
	}

	// Every number must be finite (NaN and ±Inf parse as floats); the range
	// checks below only look at the finite ones, so each bad value is reported once.
	infinite := map[string]bool{}
	for _, f := range t.fields() {
		if p, ok := f.ptr.(*float64); ok && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
			bad(f.Name, *p, "must be a finite number")
			infinite[f.Name] = true
		}
	}
	greater0 := func(name string, v float64) {
		if !infinite[name] && !(v > 0) {
			bad(name, v, "must be greater than 0")
		}
	}
	greater0("alpha", t.Alpha)
	greater0("lr", t.LR)
	greater0("upper-lr-mult", t.UpperLRMult)
	unit := func(name string, v float64) {
		if !infinite[name] && !(v >= 0 && v < 1) {
			bad(name, v, "must be in [0, 1)")
		}
	}
	unit("dropout", t.Dropout)
	unit("val-split", t.ValSplit)
	if !(t.OuterSplit > 0 && t.OuterSplit < 1) {
		errs = append(errs, &Error{Where: "--outer-split", Value: fmt.Sprint(t.OuterSplit), Msg: "want a share of the training rows strictly between 0 and 1"})
	}
	unit("warmup-ratio", t.WarmupRatio)
	if !infinite["fim-rate"] && !(t.FIMRate >= 0 && t.FIMRate <= 1) {
		bad("fim-rate", t.FIMRate, "must be in [0, 1]")
	}
	if !infinite["dedupe-threshold"] && !(t.DedupeThreshold > 0 && t.DedupeThreshold <= 1) {
		bad("dedupe-threshold", t.DedupeThreshold, "must be in (0, 1] (1 = exact duplicates only)")
	}
	if t.MaxFileBytes < 1 {
		bad("max-file-bytes", t.MaxFileBytes, "must be a positive number of bytes")
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"weight-decay", t.WeightDecay}, {"max-grad-norm", t.MaxGradNorm}, {"orth-reg", t.OrthReg}} {
		if !infinite[c.name] && !(c.v >= 0) {
			bad(c.name, c.v, "must be 0 or more")
		}
	}
	t.expandPaths(bad)
	if t.WarmupRatio > 0 {
		if o.Explicit("warmup-steps") && t.WarmupSteps > 0 {
			both("warmup-steps", "warmup-ratio", "give one warmup setting, not both")
		}
		t.WarmupSteps = 0
	}

	t.validateTargets(o, bad)

	if strings.TrimSpace(t.Model) == "" {
		bad("model", `""`, "must name a HF repo id, a local directory or a catalog preset")
	}
	switch {
	case t.TrainFile != "" && t.Dataset != "":
		both("train-file", "dataset", "give one source of training data, not both")
	case t.TrainFile != "" && len(t.TrainDir) > 0:
		both("train-file", "train-dir", "give one source of training data, not both")
	case t.Dataset != "" && len(t.TrainDir) > 0:
		both("dataset", "train-dir", "give one source of training data, not both")
	case t.TrainFile == "" && t.Dataset == "" && len(t.TrainDir) == 0:
		errs = append(errs, &Error{Where: "--train-file / --dataset / --train-dir", Msg: "no training data: give --train-file FILE, --dataset HF_ID or --train-dir DIR"})
	}
	if len(t.TrainDir) == 0 {
		for _, s := range []struct {
			name string
			v    []string
		}{{"val-dir", t.ValDir}, {"include", t.Include}, {"exclude", t.Exclude}, {"lang", t.Lang}} {
			if len(s.v) > 0 {
				bad(s.name, strings.Join(s.v, ","), "applies only to source trees: give --train-dir DIR too")
			}
		}
	} else if len(t.ValDir) > 0 && t.ValFile != "" {
		both("val-dir", "val-file", "give one source of validation data, not both")
	}
	if t.Resume != "" && t.ResumeAdapter != "" {
		both("resume", "resume-adapter", "give one: --resume continues a checkpoint exactly, --resume-adapter starts from an adapter")
	}
	return errors.Join(errs...)
}

func (t *Train) validateTargets(o Origins, bad func(string, any, string, ...any)) {
	var clean []string
	for _, s := range t.Targets {
		if s = strings.TrimSpace(s); s != "" {
			clean = append(clean, s)
		}
	}
	t.Targets = clean
	allowed := strings.Join(Projections, ",") + " or all-linear"
	if len(clean) == 0 {
		bad("targets", `""`, "must list projections: %s", allowed)
		return
	}
	seen := map[string]bool{}
	for _, s := range clean {
		switch {
		case s == "all-linear":
			if len(clean) > 1 {
				bad("targets", strings.Join(clean, ","), "all-linear already means all seven projections; give it alone")
				return
			}
		case !slices.Contains(Projections, s):
			bad("targets", s, "unknown projection; allowed: %s", allowed)
		case seen[s]:
			bad("targets", strings.Join(clean, ","), "%s is listed twice", s)
		}
		seen[s] = true
	}
}

// userHomeDir is os.UserHomeDir, replaceable in tests.
var userHomeDir = os.UserHomeDir

// expandPaths replaces a leading "~" or "~/" in the path settings (output, data
// files, model, resume, resume-adapter) with the home directory, as a shell
// would: YAML values and --flag=~/x reach bidora unexpanded. "~user/…" is refused
// rather than taken as a folder literally named "~user".
func (t *Train) expandPaths(bad func(string, any, string, ...any)) {
	type pathSetting struct {
		name string
		v    *string
	}
	paths := []pathSetting{
		{"output", &t.Output}, {"train-file", &t.TrainFile}, {"val-file", &t.ValFile}, {"model", &t.Model},
		{"resume", &t.Resume}, {"resume-adapter", &t.ResumeAdapter},
	}
	for i := range t.TrainDir {
		paths = append(paths, pathSetting{"train-dir", &t.TrainDir[i]})
	}
	for i := range t.ValDir {
		paths = append(paths, pathSetting{"val-dir", &t.ValDir[i]})
	}
	for _, p := range paths {
		v := *p.v
		if !strings.HasPrefix(v, "~") {
			continue
		}
		rest, ok := strings.CutPrefix(v, "~")
		if ok && rest != "" && !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, string(filepath.Separator)) {
			bad(p.name, v, "~user paths are not expanded; write the full path (or ./%s for a folder named so)", v)
			continue
		}
		home, err := userHomeDir()
		if err != nil || home == "" {
			bad(p.name, v, "cannot expand ~: the home directory is unknown ($HOME is not set); write the full path")
			continue
		}
		*p.v = filepath.Join(home, rest)
	}
}
