// Package train is the fine-tuning loop: it walks the data in seeded, length-grouped
// batches, steps a method (plain LoRA/DoRA, BiDoRA's two levels, …) on the schedule,
// evaluates, logs metrics, writes checkpoints from which a run continues bit for bit,
// stops cleanly on cancellation and writes the final adapter. It knows nothing about
// kernels: the model is anything that implements Model (*model.Model, the CPU engine,
// today; a GPU backend later).
//
// The loop is Run, to be read from top to bottom. A training method plugs in as a
// Stepper per Phase: the loop owns epochs, evaluation, metrics, checkpoints,
// interruption and outputs; the stepper owns what one optimiser step does and the
// extra state it needs in a checkpoint. docs/architecture.md draws the whole house.
package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/optim"
)

// Model is what training needs from a model with an adapter. *model.Model implements
// it.
//
// Losses are SUMS of token cross-entropies with the number of tokens that contributed,
// so that the loop forms token-weighted means over accumulated micro-batches (gradient
// accumulation gives exactly the large-batch gradient). LossAndGrad ADDS the gradient
// of its loss sum into every Param.Grad.
type Model interface {
	// Loss runs the forward pass in evaluation mode (no dropout, no gradients).
	Loss(ctx context.Context, b *dataset.Batch) (lossSum float64, tokens int, err error)
	// LossAndGrad runs forward and backward in training mode (adapter dropout on).
	LossAndGrad(ctx context.Context, b *dataset.Batch) (lossSum float64, tokens int, err error)
	// SetDropoutSeed fixes the dropout stream of the next training pass, so that a
	// resumed run draws the masks an uninterrupted one would.
	SetDropoutSeed(seed uint64)
	// Params lists the trainable adapter tensors, always in the same order.
	Params() []optim.Param
	// SaveAdapter writes the adapter in PEFT format into dir.
	SaveAdapter(dir string) error
	// LoadAdapter reads adapter weights written by SaveAdapter.
	LoadAdapter(dir string) error
}

// Phase is one stretch of training: a data set walked for Options.Epochs (or
// MaxSteps) with one Stepper. Plain fine-tuning has one phase; BiDoRA has a search
// and a retraining phase.
type Phase struct {
	Name    string // logged in metrics.jsonl when the run has more than one phase
	Data    []dataset.Example
	Stepper Stepper
}

// Options are the training hyper-parameters.
type Options struct {
	Output         string
	Epochs         int
	MaxSteps       int // > 0 overrides Epochs (per phase)
	BatchSize      int
	GradAccum      int
	LR             float64
	Scheduler      string // cosine, linear, constant
	WarmupSteps    int
	WarmupRatio    float64 // used when WarmupSteps is 0
	WeightDecay    float64
	MaxGradNorm    float64
	Optimizer      string // adamw or sgd
	Seed           uint64
	EvalSteps      int // 0: only at epoch ends
	SaveSteps      int // 0: no intermediate checkpoints
	SaveTotalLimit int // > 0: keep the newest N checkpoints (and the best by validation loss)
	Packing        bool
	MaxSeqLen      int
	GroupByLen     bool
	ResumeFrom     string // a checkpoint-N dir
	// Identity lists the settings that define what is trained (rank, alpha, targets,
	// model, seed, …: name → value as given). A checkpoint records them and a resume
	// with any of them changed is refused (*ResumeMismatchError). The loop adds the
	// data's fingerprint itself.
	Identity map[string]string
	// Tunable lists settings a resumed run may change (learning rate, schedule, …):
	// a change is logged and returned in Result.Changed.
	Tunable map[string]string
	// PlotSeries names Metrics.Extra values drawn in loss.png beside the losses.
	PlotSeries []string
	Log        Logger
	// BeforeFinish writes extra outputs (config.yaml, a model card) after the adapter.
	BeforeFinish func(r *Result) error
}

// Logger receives progress events.
type Logger interface {
	Start(total int)
	Step(m Metrics)
	Eval(step int, valLoss float64)
	Message(format string, args ...any)
}

// Result summarises a run.
type Result struct {
	Steps        int
	FinalLoss    float64
	FirstValLoss float64 // NaN without validation
	BestValLoss  float64
	BestStep     int
	Interrupted  bool
	Checkpoint   string // last checkpoint written, if any
	History      []Metrics
	PhaseSteps   map[string]int // optimiser steps per phase
	Changed      []Change       // settings changed on resume
}

// Change is a tunable setting whose value differs from the checkpoint's.
type Change struct{ Name, From, To string }

// ErrInterrupted is returned (wrapped) when the context is cancelled; a checkpoint has
// been saved first.
var ErrInterrupted = errors.New("training interrupted")

// Validate checks the options (errors are *OptionError).
func (o *Options) Validate() error {
	bad := func(field string, v any, want string) error {
		return &OptionError{Field: field, Value: fmt.Sprint(v), Want: want}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case o.BatchSize < 1:
		return bad("BatchSize", o.BatchSize, "≥ 1")
	case o.GradAccum < 1:
		return bad("GradAccum", o.GradAccum, "≥ 1")
	case o.Epochs < 1 && o.MaxSteps < 1:
		return bad("Epochs", o.Epochs, "≥ 1 (or MaxSteps ≥ 1)")
	case !(o.LR > 0) || !finite(o.LR):
		return bad("LR", o.LR, "a finite number > 0")
	case o.Optimizer != "adamw" && o.Optimizer != "sgd":
		return bad("Optimizer", o.Optimizer, "adamw or sgd")
	case o.WeightDecay < 0 || !finite(o.WeightDecay):
		return bad("WeightDecay", o.WeightDecay, "a finite number ≥ 0")
	case o.MaxGradNorm < 0 || !finite(o.MaxGradNorm):
		return bad("MaxGradNorm", o.MaxGradNorm, "a finite number ≥ 0")
	case o.WarmupRatio < 0 || o.WarmupRatio > 1 || !finite(o.WarmupRatio):
		return bad("WarmupRatio", o.WarmupRatio, "in [0, 1]")
	case o.WarmupSteps < 0:
		return bad("WarmupSteps", o.WarmupSteps, "≥ 0")
	case o.SaveTotalLimit < 0:
		return bad("SaveTotalLimit", o.SaveTotalLimit, "≥ 0")
	case o.Output == "":
		return bad("Output", `""`, "a directory")
	}
	if err := (optim.Schedule{Kind: o.Scheduler}).Validate(); err != nil {
		return &OptionError{Field: "Scheduler", Value: fmt.Sprintf("%q", o.Scheduler), Want: "cosine, linear or constant"}
	}
	return nil
}

// NewOptimizer returns a fresh optimiser of the configured kind.
func (o *Options) NewOptimizer() optim.Optimizer {
	if o.Optimizer == "sgd" {
		return &optim.SGD{WeightDecay: o.WeightDecay}
	}
	return optim.NewAdamW(o.WeightDecay)
}

func (o *Options) batchOptions() dataset.BatchOptions {
	return dataset.BatchOptions{BatchSize: o.BatchSize, Seed: o.Seed, GroupByLength: o.GroupByLen, Pack: o.Packing, MaxSeqLen: o.MaxSeqLen}
}

// StepsFor is the number of optimiser steps a phase on examples takes.
func (o *Options) StepsFor(examples []dataset.Example) int {
	if o.MaxSteps > 0 {
		return o.MaxSteps
	}
	perEpoch := len(dataset.EpochBatches(examples, 0, o.batchOptions()))
	return (perEpoch + o.GradAccum - 1) / o.GradAccum * o.Epochs
}

// schedule is the learning-rate schedule of a phase of total steps.
func (o *Options) schedule(total int) optim.Schedule {
	warmup := o.WarmupSteps
	if warmup == 0 && o.WarmupRatio > 0 {
		warmup = int(math.Ceil(o.WarmupRatio * float64(total)))
	}
	return optim.Schedule{Kind: o.Scheduler, Base: o.LR, Warmup: warmup, Total: total}
}

// Run trains model through phases, evaluating on eval (may be empty), and writes the
// outputs into o.Output: the adapter, metrics.jsonl, loss.png and checkpoints. On
// cancellation it saves a checkpoint and returns an error wrapping ErrInterrupted.
func Run(ctx context.Context, model Model, phases []Phase, eval []dataset.Example, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(phases) == 0 {
		return nil, errors.New("train: no phases")
	}
	for _, p := range phases {
		if len(p.Data) == 0 {
			return nil, &NoDataError{Phase: p.Name}
		}
	}
	log := o.Log
	if log == nil {
		log = nopLogger{}
	}
	l := &loop{ctx: ctx, model: model, phases: phases, eval: eval, o: o, log: log, res: &Result{}}
	for _, p := range phases {
		l.totals = append(l.totals, o.StepsFor(p.Data))
	}
	l.st = state{BestValLoss: math.Inf(1), FirstValLoss: math.NaN(), Seed: o.Seed, PhaseSteps: l.totals,
		Identity: identity(o, phases), Tunable: o.Tunable}
	l.st.TotalSteps = sum(l.totals)

	// Everything is validated before any file is touched: a resume that does not fit
	// this run leaves the output directory as it was.
	if o.ResumeFrom != "" {
		if err := l.resume(o.ResumeFrom); err != nil {
			return nil, fmt.Errorf("resuming from %s: %w", o.ResumeFrom, err)
		}
	} else if err := phases[0].Stepper.Begin(); err != nil {
		return nil, err
	}
	if err := RecoverOutput(o.Output); err != nil {
		return nil, err
	}
	var err error
	if l.metrics, err = openMetricsLog(o.Output, l.st.Step); err != nil {
		return nil, err
	}
	defer l.metrics.Close()
	return l.run()
}

// loop is one run of Run.
type loop struct {
	ctx     context.Context
	model   Model
	phases  []Phase
	eval    []dataset.Example
	o       Options
	log     Logger
	st      state
	totals  []int // optimiser steps per phase
	metrics *metricsLog
	res     *Result
}

func (l *loop) run() (*Result, error) {
	st, o := &l.st, &l.o
	if st.Step == 0 && len(l.eval) > 0 {
		if _, err := l.evaluate(); err != nil {
			if l.ctx.Err() != nil {
				return l.interrupt()
			}
			return nil, err
		}
	}
	l.log.Start(st.TotalSteps)
	start := time.Now()
	// The phase the run starts in has begun already (Run began it, or the checkpoint
	// holds its state); later phases begin here.
	for first := st.Phase; st.Phase < len(l.phases); st.Phase++ {
		ph := l.phases[st.Phase]
		if st.Phase != first {
			if err := ph.Stepper.Begin(); err != nil {
				return nil, err
			}
			l.log.Message("phase %s: %d steps on %d examples", ph.Name, l.totals[st.Phase], len(ph.Data))
		}
		total := l.totals[st.Phase]
		sched := o.schedule(total)
		for st.PhaseStep < total {
			batches := dataset.EpochBatches(ph.Data, st.Epoch, o.batchOptions())
			fromStep, fromBatch := st.PhaseStep, st.Batch
			for st.Batch < len(batches) && st.PhaseStep < total {
				if l.ctx.Err() != nil {
					return l.interrupt()
				}
				// One optimiser step = GradAccum micro-batches (fewer at an epoch's end).
				group := batches[st.Batch:min(st.Batch+o.GradAccum, len(batches))]
				stepStart := time.Now()
				s := Step{Phase: st.PhaseStep, Global: st.Step, Group: group, LR: sched.LR(st.PhaseStep), Schedule: sched,
					Seed: o.Seed ^ uint64(st.Step)<<20}
				stats, err := ph.Stepper.Step(l.ctx, &s)
				if err != nil {
					// A stepper changes nothing before it can no longer be cancelled, so
					// the state is still that of the last completed step.
					if l.ctx.Err() != nil {
						return l.interrupt()
					}
					return nil, fmt.Errorf("step %d: %w", st.Step+1, err)
				}
				st.Batch += len(group)
				if stats.Tokens == 0 {
					continue // nothing to learn from (all labels masked): no step
				}
				st.Step++
				st.PhaseStep++
				l.res.FinalLoss = stats.Loss
				m := Metrics{Step: st.Step, Epoch: float64(st.Epoch) + float64(st.Batch)/float64(len(batches)),
					Loss: stats.Loss, LR: s.LR, GradNorm: stats.GradNorm, Tokens: stats.Tokens,
					TokensPS: float64(batchTokens(group)) / time.Since(stepStart).Seconds(),
					ElapsedS: time.Since(start).Seconds(), TotalStep: st.TotalSteps, Extra: stats.Extra, Phase: ph.Name}
				endOfEpoch := st.Batch >= len(batches)
				var evalErr error
				if (o.EvalSteps > 0 && st.Step%o.EvalSteps == 0) || endOfEpoch || st.PhaseStep == total {
					v, err := l.evaluate()
					if err == nil && !math.IsNaN(v) {
						m.ValLoss = &v
					}
					evalErr = err
				}
				st.History = append(st.History, m)
				if err := l.metrics.Write(m); err != nil {
					return nil, err
				}
				l.log.Step(m)
				if evalErr != nil {
					// Ctrl-C during evaluation: the step is done, keep it.
					if l.ctx.Err() != nil {
						return l.interrupt()
					}
					return nil, evalErr
				}
				last := st.Phase == len(l.phases)-1 && st.PhaseStep == total
				if o.SaveSteps > 0 && st.Step%o.SaveSteps == 0 && !last {
					if err := l.checkpoint(); err != nil {
						return nil, err
					}
				}
			}
			if st.Batch >= len(batches) {
				if fromBatch == 0 && st.PhaseStep == fromStep {
					// A whole epoch without a label that carries loss would loop forever.
					return nil, &NoDataError{Phase: ph.Name, NoLoss: true}
				}
				st.Epoch, st.Batch = st.Epoch+1, 0
			}
		}
		st.PhaseStep, st.Epoch, st.Batch = 0, 0, 0
	}
	return l.finish(false)
}

// evaluate measures the validation loss and tracks the first and the best.
func (l *loop) evaluate() (float64, error) {
	if len(l.eval) == 0 {
		return math.NaN(), nil
	}
	loss, _, err := Evaluate(l.ctx, l.model, l.eval, l.o.BatchSize)
	if err != nil {
		return 0, err
	}
	st := &l.st
	if math.IsNaN(st.FirstValLoss) {
		st.FirstValLoss = loss
	}
	if loss < st.BestValLoss {
		st.BestValLoss, st.BestStep = loss, st.Step
	}
	l.log.Eval(st.Step, loss)
	return loss, nil
}

// interrupt saves a checkpoint of the last completed step and finishes.
func (l *loop) interrupt() (*Result, error) {
	if err := l.checkpoint(); err != nil {
		return nil, err
	}
	return l.finish(true)
}

func (l *loop) checkpoint() error {
	dir := filepath.Join(l.o.Output, fmt.Sprintf("%s%d", checkpointPrefix, l.st.Step))
	if err := l.save(dir); err != nil {
		return err
	}
	l.res.Checkpoint = dir
	if l.o.SaveTotalLimit > 0 {
		return pruneCheckpoints(l.o.Output, l.o.SaveTotalLimit, l.st.History)
	}
	return nil
}

func (l *loop) finish(interrupted bool) (*Result, error) {
	st, res := &l.st, l.res
	res.Steps, res.Interrupted = st.Step, interrupted
	res.FirstValLoss, res.BestValLoss, res.BestStep, res.History = st.FirstValLoss, st.BestValLoss, st.BestStep, st.History
	res.PhaseSteps = map[string]int{}
	for _, m := range st.History {
		res.PhaseSteps[m.Phase]++
	}
	if err := writeOutputs(&l.o, l.model, res); err != nil {
		return res, err
	}
	if l.o.BeforeFinish != nil {
		if err := l.o.BeforeFinish(res); err != nil {
			return res, err
		}
	}
	if interrupted {
		return res, fmt.Errorf("%w at step %d: saved %s", ErrInterrupted, st.Step, res.Checkpoint)
	}
	return res, nil
}

// Evaluate returns the token-weighted mean loss of examples, evaluated in order in
// batches of batchSize, and the token count.
func Evaluate(ctx context.Context, model interface {
	Loss(context.Context, *dataset.Batch) (float64, int, error)
}, examples []dataset.Example, batchSize int) (float64, int, error) {
	var total float64
	tokens := 0
	for lo := 0; lo < len(examples); lo += max(1, batchSize) {
		b := dataset.NewBatch(examples[lo:min(lo+max(1, batchSize), len(examples))])
		l, n, err := model.Loss(ctx, &b)
		if err != nil {
			return 0, 0, fmt.Errorf("evaluating: %w", err)
		}
		total += l
		tokens += n
	}
	if tokens == 0 {
		return math.NaN(), 0, errors.New("evaluating: no tokens carry loss")
	}
	return total / float64(tokens), tokens, nil
}

func batchTokens(bs []dataset.Batch) int {
	n := 0
	for i := range bs {
		n += bs[i].Tokens()
	}
	return n
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}

type nopLogger struct{}

func (nopLogger) Start(int)              {}
func (nopLogger) Step(Metrics)           {}
func (nopLogger) Eval(int, float64)      {}
func (nopLogger) Message(string, ...any) {}
