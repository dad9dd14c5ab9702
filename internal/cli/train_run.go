package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bidora/bidora/internal/atomicfile"

	"github.com/bidora/bidora/bilevel"
	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/hub"
	"github.com/bidora/bidora/internal/catalog"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/internal/progress"
	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/train"
)

// resolveModelDir maps a catalog preset to its repo id and a repo id to a local dir;
// errors name flag, the flag ref was given with.
func resolveModelDir(ctx context.Context, stdio *IO, flag, ref string) (string, error) {
	if _, err := os.Stat(ref); err == nil {
		return ref, nil
	}
	if e, ok := catalog.Find(ref); ok {
		ref = e.ID
	}
	c := hub.FromEnv()
	c.Progress = progress.New(stdio.Err, stdio.IsTerminal)
	dir, err := c.ResolveModel(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", flag, ref, err)
	}
	return dir, nil
}

// trainRun holds what a training run has loaded.
type trainRun struct {
	cfg     *config.Train
	dir     string // local model dir
	mc      *modelcfg.Config
	pipe    *textPipeline
	trainEx []dataset.Example
	valEx   []dataset.Example
	valFrom string
	model   *model.Model
	repo    *repoData // --train-dir's files, split and report
}

// runTraining loads the model and data and runs package train's loop: one phase of
// plain fine-tuning, or BiDoRA's phases.
func runTraining(ctx context.Context, stdio *IO, cfg *config.Train, header []string) error {
	start := time.Now()
	// One run per output directory: the lock is taken before anything there is read
	// or written, and released when the process ends however it ends.
	unlock, err := atomicfile.LockDir(cfg.Output)
	if err != nil {
		return outputError(err)
	}
	defer unlock()
	if cfg.Resume == "" {
		if err := train.CheckOutputDir(cfg.Output, cfg.Overwrite); err != nil {
			return outputError(err)
		}
		// --overwrite: an earlier run's checkpoints would otherwise be taken for this
		// run's by --resume latest and --save-total-limit.
		if old, _ := train.Checkpoints(cfg.Output); len(old) > 0 {
			for _, ck := range old {
				if err := os.RemoveAll(ck); err != nil {
					return fmt.Errorf("--overwrite: removing %s: %w", ck, err)
				}
			}
			fmt.Fprintf(stdio.Err, "--overwrite: removed %d checkpoints of an earlier run in %s\n", len(old), cfg.Output)
		}
	} else {
		ck, err := resolveResume(cfg)
		if err != nil {
			return err
		}
		cfg.Resume = ck
	}
	if cfg.Threads > 0 {
		kernels.SetThreads(cfg.Threads)
	}
	r, err := prepareRun(ctx, stdio, cfg)
	if err != nil {
		return err
	}
	if err := r.loadModel(ctx, stdio); err != nil {
		return err
	}
	defer r.model.Close()

	logger := newTrainLogger(stdio, cfg.LogFormat)
	opts := r.trainOptions(logger, header)
	phases := []train.Phase{{Name: "train", Data: r.trainEx, Stepper: train.NewPlain(r.model, &opts)}}
	if cfg.Method == "bidora" {
		if phases, err = r.bidoraPhases(stdio, &opts); err != nil {
			return err
		}
	}
	res, err := train.Run(ctx, r.model, phases, r.valEx, opts)
	logger.finish()
	if err != nil {
		return trainError(err)
	}
	return r.summary(stdio, res, time.Since(start))
}

// prepareRun does what training and --dry-run share: it finds the model, loads its
// config.json and tokenizer (with fill-in-the-middle if asked) and reads and encodes
// the data; the weights are not loaded.
func prepareRun(ctx context.Context, stdio *IO, cfg *config.Train) (*trainRun, error) {
	r := &trainRun{cfg: cfg}
	var err error
	if r.dir, err = resolveModelDir(ctx, stdio, "--model", cfg.Model); err != nil {
		return nil, err
	}
	if r.mc, err = modelcfg.Load(r.dir); err != nil {
		return nil, fmt.Errorf("--model %s: %w", cfg.Model, err)
	}
	if r.pipe, err = newTextPipeline(r.dir, r.mc, cfg.Template, cfg.TrainOnPrompt, cfg.MaxSeqLen); err != nil {
		return nil, err
	}
	if err := r.pipe.enableFIM(cfg, r.mc); err != nil {
		return nil, err
	}
	if err := r.loadData(ctx, stdio); err != nil {
		return nil, err
	}
	return r, nil
}

// resolveResume turns --resume (a checkpoint, the output directory or "latest") into
// a checkpoint directory.
func resolveResume(cfg *config.Train) (string, error) {
	dir := cfg.Resume
	if dir == "latest" {
		dir = cfg.Output
	}
	if err := train.RecoverOutput(cfg.Output); err != nil {
		return "", err
	}
	ck, err := train.LatestCheckpoint(dir)
	if err != nil {
		return "", usageErrorf("--resume %s: %w", cfg.Resume, err)
	}
	return ck, nil
}

// trainOptions maps the configuration onto the loop's options. The settings that
// define the adapter must match on resume; the schedule's may change.
func (r *trainRun) trainOptions(logger *trainLogger, header []string) train.Options {
	cfg := r.cfg
	o := train.Options{
		Output: cfg.Output, Epochs: cfg.Epochs, MaxSteps: cfg.MaxSteps, BatchSize: cfg.BatchSize,
		GradAccum: cfg.GradAccum, LR: cfg.LR, Scheduler: cfg.LRScheduler, WarmupSteps: cfg.WarmupSteps,
		WarmupRatio: cfg.WarmupRatio, WeightDecay: cfg.WeightDecay, MaxGradNorm: cfg.MaxGradNorm,
		Optimizer: cfg.Optimizer, Seed: uint64(cfg.Seed), EvalSteps: cfg.EvalSteps, SaveSteps: cfg.SaveSteps,
		SaveTotalLimit: cfg.SaveTotalLimit, Packing: cfg.Packing, MaxSeqLen: cfg.MaxSeqLen, GroupByLen: !cfg.Packing,
		ResumeFrom: cfg.Resume, Log: logger,
		BeforeFinish: func(res *train.Result) error { return r.writeRunFiles(res, header) },
	}
	str := func(v any) string { return fmt.Sprint(v) }
	o.Identity = map[string]string{
		"model": cfg.Model, "method": cfg.Method, "rank": str(cfg.Rank), "alpha": str(cfg.Alpha),
		"targets": strings.Join(normTargets(cfg.TargetModules()), ","), "rslora": str(cfg.RSLoRA),
		"template": cfg.Template, "train-on-prompt": str(cfg.TrainOnPrompt), "quantization": cfg.Quantization,
		"base-dtype": cfg.BaseDType,
	}
	if cfg.Method == "bidora" {
		o.Identity["hypergrad"], o.Identity["no-retrain"], o.Identity["outer-split"] = cfg.Hypergrad, str(cfg.NoRetrain), str(cfg.OuterSplit)
		o.PlotSeries = bilevel.PlotSeries
	}
	o.Tunable = map[string]string{
		"lr": str(cfg.LR), "lr-scheduler": cfg.LRScheduler, "warmup-steps": str(cfg.WarmupSteps),
		"warmup-ratio": str(cfg.WarmupRatio), "weight-decay": str(cfg.WeightDecay), "max-grad-norm": str(cfg.MaxGradNorm),
		"epochs": str(cfg.Epochs), "max-steps": str(cfg.MaxSteps), "eval-steps": str(cfg.EvalSteps),
		"save-steps": str(cfg.SaveSteps), "save-total-limit": str(cfg.SaveTotalLimit), "dropout": str(cfg.Dropout),
		"upper-lr-mult": str(cfg.UpperLRMult), "orth-reg": str(cfg.OrthReg),
	}
	return o
}

// optionFlags names the flag behind each train.Options field (and loop-owned resume
// identity key).
var optionFlags = map[string]string{
	"BatchSize": "--batch-size", "GradAccum": "--grad-accum", "Epochs": "--epochs", "LR": "--lr",
	"Optimizer": "--optimizer", "WeightDecay": "--weight-decay", "MaxGradNorm": "--max-grad-norm",
	"WarmupRatio": "--warmup-ratio", "WarmupSteps": "--warmup-steps", "SaveTotalLimit": "--save-total-limit",
	"Output": "--output", "Scheduler": "--lr-scheduler", "Seed": "--seed", "Packing": "--packing",
	"MaxSeqLen": "--max-seq-len", "GroupByLen": "--packing", "UpperLRMult": "--upper-lr-mult", "OrthReg": "--orth-reg",
	"data": "--train-file",
}

func flagOf(key string) string {
	if f, ok := optionFlags[key]; ok {
		return f
	}
	return "--" + key
}

// trainError maps the loop's typed errors to the flags behind them (exit 2).
func trainError(err error) error {
	var oe *train.OptionError
	var rm *train.ResumeMismatchError
	var de *bilevel.DataError
	switch {
	case errors.Is(err, train.ErrInterrupted):
		return fmt.Errorf("%w; continue with --resume latest", err)
	case errors.As(err, &oe):
		return usageErrorf("%s %s: want %s", flagOf(oe.Field), oe.Value, oe.Want)
	case errors.As(err, &rm):
		if rm.Name == "data" {
			return usageErrorf("--resume %s: %v", rm.Checkpoint, rm)
		}
		return usageErrorf("--resume %s: the checkpoint was made with %s %s, this run has %s %s; resume with the checkpoint's setting (or start a new run)",
			rm.Checkpoint, flagOf(rm.Name), rm.Saved, flagOf(rm.Name), rm.Run)
	case errors.As(err, &de):
		return usageErrorf("--method bidora: %v", de)
	}
	return err
}

// outputError maps output-directory errors to --output (exit 2).
func outputError(err error) error {
	var ne *train.OutputNotEmptyError
	var busy *atomicfile.BusyError
	if errors.As(err, &busy) {
		return usageErrorf("--output %v; wait for it to finish or choose another --output", busy)
	}
	if errors.As(err, &ne) {
		return usageErrorf("--output %s is not empty (has %s…); pass --overwrite to reuse it or --resume to continue a run", ne.Dir, strings.Join(ne.Names, ", "))
	}
	return usageErrorf("--output: %w", err)
}

func (r *trainRun) loadData(ctx context.Context, stdio *IO) error {
	cfg := r.cfg
	if len(cfg.TrainDir) > 0 {
		return r.loadRepoData(ctx, stdio)
	}
	ro := dataset.ReadOptions{Strict: cfg.Strict, MaxRows: cfg.MaxSamples, MaxLineBytes: cfg.MaxLineBytes}
	name := cfg.TrainFile
	if cfg.Dataset != "" {
		name = cfg.Dataset + ":" + cfg.DatasetSplit
	}
	rows, bad, err := loadRows(ctx, stdio, cfg.TrainFile, cfg.Dataset, cfg.DatasetConfig, cfg.DatasetSplit, ro)
	if err != nil {
		return wrapDataErr(err)
	}
	rep := &dataReport{Bad: len(bad), BadRows: bad}
	all, err := r.pipe.encodeRows(ctx, rows, cfg.Strict, rep)
	if err != nil {
		return wrapDataErr(err)
	}
	rep.print(stdio.Err, name)
	if len(all) == 0 {
		return fmt.Errorf("%s: no usable training rows", name)
	}
	switch {
	case cfg.ValFile != "":
		vrows, vbad, err := loadRows(ctx, stdio, cfg.ValFile, "", "", "", dataset.ReadOptions{Strict: cfg.Strict, MaxLineBytes: cfg.MaxLineBytes})
		if err != nil {
			return wrapDataErr(err)
		}
		vrep := &dataReport{Bad: len(vbad), BadRows: vbad}
		if r.valEx, err = r.pipe.encodeRows(ctx, vrows, cfg.Strict, vrep); err != nil {
			return wrapDataErr(err)
		}
		vrep.print(stdio.Err, cfg.ValFile)
		if len(r.valEx) == 0 {
			return usageErrorf("--val-file %s has no usable rows", cfg.ValFile)
		}
		r.trainEx, r.valFrom = all, cfg.ValFile
	case cfg.ValSplit > 0:
		r.trainEx, r.valEx = dataset.Split(all, cfg.ValSplit, uint64(cfg.Seed))
		r.valFrom = fmt.Sprintf("%.0f%% of %s (seeded split)", cfg.ValSplit*100, name)
	default:
		r.trainEx = all
	}
	fmt.Fprintf(stdio.Err, "data: %d training and %d validation examples (template %s)\n", len(r.trainEx), len(r.valEx), r.pipe.enc.Template())
	return nil
}

// wrapDataErr makes a strict-mode bad row a usage error (exit 2) naming file:line.
func wrapDataErr(err error) error {
	var b dataset.BadRow
	if errors.As(err, &b) {
		return usageErrorf("%s (--strict)", b)
	}
	return err
}

// loadModel loads the base with the resolved --quantization (auto-adjust has turned
// auto into a format when the model's shape was known up front; otherwise it is
// resolved here from the downloaded config, and means none with --auto-hardware=false)
// and --base-dtype (auto, when still so, is resolved from the downloaded weights),
// and attaches the adapter.
func (r *trainRun) loadModel(ctx context.Context, stdio *IO) error {
	cfg := r.cfg
	q := cfg.Quantization
	if q == "auto" && !cfg.AutoHardware {
		q = "none"
	}
	base, _ := resolveBaseDType(model.BaseDType(cfg.BaseDType), r.dir, r.mc) // auto: as stored
	s := memplan.Settings{Method: cfg.Method, Rank: cfg.Rank,
		Targets: cfg.Targets, Optimizer: cfg.Optimizer, BatchSize: cfg.BatchSize, SeqLen: cfg.MaxSeqLen,
		GradCheckpointing: cfg.GradCheckpointing, Dropout: cfg.Dropout, BaseDType: string(base)}
	s = withCompute(s, cfg.Compute)
	kind := resolveAutoQuant(ctx, stdio.Err, q, r.mc, s, cfg.Output)
	s.Quant = memplan.Quant(kind)
	m, err := loadQuantModel(stdio.Err, r.dir, kind, model.Options{NoCheckpointing: !cfg.GradCheckpointing, Seed: uint64(cfg.Seed), Name: cfg.Model, BaseDType: base, Compute: model.Compute(cfg.Compute),
		KeptActivationsBudget: plannedKeptBudget(ctx, r.mc, s, cfg.Output)})
	if err != nil {
		return fmt.Errorf("loading model %s: %w", cfg.Model, err)
	}
	if cfg.ResumeAdapter != "" {
		if err = m.LoadAdapter(cfg.ResumeAdapter); err != nil {
			err = fmt.Errorf("--resume-adapter %s: %w", cfg.ResumeAdapter, err)
		} else if a := m.Adapter(); cfg.Method == "bidora" && !a.DoRA {
			err = usageErrorf("--resume-adapter %s is not a DoRA adapter (use_dora false); --method bidora needs one", cfg.ResumeAdapter)
		}
	} else {
		err = m.AddAdapters(model.AdapterConfig{Targets: cfg.TargetModules(), Rank: cfg.Rank, Alpha: cfg.Alpha,
			Dropout: cfg.Dropout, RSLoRA: cfg.RSLoRA, DoRA: cfg.Method == "dora" || cfg.Method == "bidora"})
	}
	if err != nil {
		m.Close()
		return err
	}
	r.model = m
	return nil
}

// writeRunFiles writes config.yaml and the model card into the output dir.
func (r *trainRun) writeRunFiles(res *train.Result, header []string) error {
	var yml strings.Builder
	for _, c := range res.Changed {
		header = append(header, fmt.Sprintf("changed on resume from %s: %s %s → %s", r.cfg.Resume, c.Name, c.From, c.To))
	}
	if err := r.cfg.WriteYAML(&yml, header); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(r.cfg.Output, "config.yaml"), []byte(yml.String())); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(r.cfg.Output, "README.md"), []byte(r.modelCard(res)))
}

func (r *trainRun) modelCard(res *train.Result) string {
	cfg := r.cfg
	var b strings.Builder
	fmt.Fprintf(&b, "---\nbase_model: %s\nlibrary_name: peft\ntags:\n- bidora\n- %s\n---\n\n", cfg.Model, cfg.Method)
	fmt.Fprintf(&b, "# %s adapter for %s\n\n", strings.ToUpper(cfg.Method), cfg.Model)
	fmt.Fprintf(&b, "Trained with [bidora](https://github.com/bidora/bidora). Load it with PEFT:\n\n")
	fmt.Fprintf(&b, "```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM\nbase = AutoModelForCausalLM.from_pretrained(%q)\nmodel = PeftModel.from_pretrained(base, \"path/to/this/dir\")\n```\n\n", cfg.Model)
	fmt.Fprintf(&b, "## Data\n\n- training: %s (%d examples)\n", orDataset(cfg), len(r.trainEx))
	if len(r.valEx) > 0 {
		fmt.Fprintf(&b, "- validation: %s (%d examples)\n", r.valFrom, len(r.valEx))
	}
	fmt.Fprintf(&b, "- template: %s, max sequence length %d, train on prompt: %v, packing: %v\n", r.pipe.enc.Template(), cfg.MaxSeqLen, cfg.TrainOnPrompt, cfg.Packing)
	if r.pipe.fim != nil {
		fmt.Fprintf(&b, "- fill-in-the-middle: %g of the text documents (%s)\n", cfg.FIMRate, r.pipe.fim.describe())
	}
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "## Hyper-parameters\n\n| setting | value |\n|---|---|\n")
	for _, kv := range [][2]any{{"method", cfg.Method}, {"rank", cfg.Rank}, {"alpha", cfg.Alpha}, {"rsLoRA", cfg.RSLoRA},
		{"dropout", cfg.Dropout}, {"targets", strings.Join(cfg.TargetModules(), ", ")}, {"epochs", cfg.Epochs},
		{maxStepsLabel(cfg), cfg.MaxSteps}, {"batch size", cfg.BatchSize}, {"grad accum", cfg.GradAccum}, {"learning rate", cfg.LR},
		{"schedule", cfg.LRScheduler}, {"warmup steps", cfg.WarmupSteps}, {"weight decay", cfg.WeightDecay},
		{"max grad norm", cfg.MaxGradNorm}, {"optimizer", cfg.Optimizer}, {"seed", cfg.Seed}, {"compute", string(r.model.Compute())}} {
		fmt.Fprintf(&b, "| %v | %v |\n", kv[0], kv[1])
	}
	if len(res.Changed) > 0 {
		fmt.Fprintf(&b, "\nChanged when the run was resumed from %s (the table shows the values at the end):\n\n", cfg.Resume)
		for _, c := range res.Changed {
			fmt.Fprintf(&b, "- %s: %s → %s\n", c.Name, c.From, c.To)
		}
	}
	fmt.Fprintf(&b, "\n## Results\n\n- optimiser steps: %d\n- final training loss: %.4f\n", res.Steps, res.FinalLoss)
	if !math.IsNaN(res.FirstValLoss) {
		fmt.Fprintf(&b, "- validation loss: %.4f before training, best %.4f at step %d\n", res.FirstValLoss, res.BestValLoss, res.BestStep)
	}
	fmt.Fprintf(&b, "\nThe full configuration is in config.yaml, the per-step metrics in metrics.jsonl and the loss curves in loss.png.\n")
	return b.String()
}

// maxStepsLabel names what --max-steps bounds.
func maxStepsLabel(cfg *config.Train) string {
	if cfg.Method == "bidora" {
		return "max steps (per phase)"
	}
	return "max steps"
}

func orDataset(cfg *config.Train) string {
	if len(cfg.TrainDir) > 0 {
		return repoTrainName(cfg)
	}
	if cfg.Dataset != "" {
		return fmt.Sprintf("%s (split %s)", cfg.Dataset, cfg.DatasetSplit)
	}
	return cfg.TrainFile
}

func (r *trainRun) summary(stdio *IO, res *train.Result, took time.Duration) error {
	fmt.Fprintf(stdio.Out, "adapter: %s\n", r.cfg.Output)
	fmt.Fprintf(stdio.Out, "steps: %d in %s, final training loss %.4f\n", res.Steps, took.Round(time.Second), res.FinalLoss)
	if !math.IsNaN(res.FirstValLoss) {
		last := res.FirstValLoss
		for _, m := range res.History {
			if m.ValLoss != nil {
				last = *m.ValLoss
			}
		}
		fmt.Fprintf(stdio.Out, "validation loss: %.4f before, %.4f after (best %.4f at step %d)\n", res.FirstValLoss, last, res.BestValLoss, res.BestStep)
	}
	return nil
}

// trainLogger shows training progress: a bar on a terminal, plain lines otherwise,
// JSON lines with --log-format json.
type trainLogger struct {
	w    io.Writer
	json bool
	rep  *progress.Reporter
	bar  *progress.Bar
}

func newTrainLogger(stdio *IO, format string) *trainLogger {
	l := &trainLogger{w: stdio.Err, json: format == "json"}
	if !l.json && stdio.IsTerminal {
		l.rep = progress.New(stdio.Err, true)
	}
	return l
}

func (l *trainLogger) Start(total int) {
	if l.rep != nil {
		l.bar = l.rep.Start("train", int64(total), "steps")
	}
}

func (l *trainLogger) Step(m train.Metrics) {
	upper, hasUpper := m.Extra["upper_loss"]
	switch {
	case l.json:
		data, _ := json.Marshal(m)
		fmt.Fprintf(l.w, "%s\n", data)
	case l.bar != nil:
		l.bar.Set("loss", fmt.Sprintf("%.4f", m.Loss))
		if hasUpper {
			l.bar.Set("upper", fmt.Sprintf("%.4f", upper))
		}
		l.bar.Set("lr", fmt.Sprintf("%.2e", m.LR))
		l.bar.Set("tok/s", fmt.Sprintf("%.0f", m.TokensPS))
		l.bar.SetCurrent(int64(m.Step))
	default:
		phase, extra := "", ""
		if m.Phase != "" && m.Phase != "train" {
			phase = " [" + m.Phase + "]"
		}
		if hasUpper {
			extra = fmt.Sprintf(" upper_loss %.4f upper_lr %.3e", upper, m.Extra["upper_lr"])
		}
		fmt.Fprintf(l.w, "step %d/%d%s epoch %.2f loss %.4f%s lr %.3e grad_norm %.3f tokens/s %.0f\n",
			m.Step, m.TotalStep, phase, m.Epoch, m.Loss, extra, m.LR, m.GradNorm, m.TokensPS)
	}
}

func (l *trainLogger) Eval(step int, loss float64) {
	line := fmt.Sprintf("eval step %d: validation loss %.4f (perplexity %.2f)", step, loss, math.Exp(loss))
	switch {
	case l.json:
		data, _ := json.Marshal(map[string]any{"step": step, "val_loss": loss})
		fmt.Fprintf(l.w, "%s\n", data)
	case l.rep != nil:
		l.rep.Println(line)
	default:
		fmt.Fprintln(l.w, line)
	}
}

func (l *trainLogger) Message(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if l.rep != nil {
		l.rep.Println(line)
		return
	}
	if l.json {
		data, _ := json.Marshal(map[string]string{"message": line})
		fmt.Fprintf(l.w, "%s\n", data)
		return
	}
	fmt.Fprintln(l.w, line)
}

func (l *trainLogger) finish() {
	if l.bar != nil {
		l.bar.Finish()
	}
}
