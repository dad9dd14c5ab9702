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

// resolveModelDir maps a catalog preset to its repo id and a repo id to a local dir.
func resolveModelDir(ctx context.Context, stdio *IO, ref string) (string, error) {
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
		return "", fmt.Errorf("--model %s: %w", ref, err)
	}
	return dir, nil
}

// trainRun holds what a training run has loaded.
type trainRun struct {
	cfg      *config.Train
	dir      string // local model dir
	mc       *modelcfg.Config
	pipe     *textPipeline
	trainEx  []dataset.Example
	valEx    []dataset.Example
	valFrom  string
	model    *model.Model
	baseLoss float64
}

// runTraining loads the model and data and runs the training loop of package train.
func runTraining(ctx context.Context, stdio *IO, cfg *config.Train, header []string) error {
	start := time.Now()
	if cfg.Resume == "" {
		if err := train.CheckOutputDir(cfg.Output, cfg.Overwrite); err != nil {
			return usageErrorf("%w", err)
		}
	}
	if cfg.Threads > 0 {
		kernels.SetThreads(cfg.Threads)
	}
	r := &trainRun{cfg: cfg}
	var err error
	if r.dir, err = resolveModelDir(ctx, stdio, cfg.Model); err != nil {
		return err
	}
	if r.mc, err = modelcfg.Load(r.dir); err != nil {
		return fmt.Errorf("--model %s: %w", cfg.Model, err)
	}
	if r.pipe, err = newTextPipeline(r.dir, r.mc, cfg.Template, cfg.TrainOnPrompt, cfg.MaxSeqLen); err != nil {
		return err
	}
	if err := r.loadData(ctx, stdio); err != nil {
		return err
	}
	if err := r.loadModel(ctx, stdio); err != nil {
		return err
	}
	defer r.model.Close()

	eng := train.NewEngine(r.model, adapterIO{r.model, cfg.Model})
	if len(r.valEx) > 0 {
		if r.baseLoss, err = r.startLoss(ctx); err != nil {
			return err
		}
	}
	logger := newTrainLogger(stdio, cfg.LogFormat)
	opts := train.Options{
		Output: cfg.Output, Epochs: cfg.Epochs, MaxSteps: cfg.MaxSteps, BatchSize: cfg.BatchSize,
		GradAccum: cfg.GradAccum, LR: cfg.LR, Scheduler: cfg.LRScheduler, WarmupSteps: cfg.WarmupSteps,
		WarmupRatio: cfg.WarmupRatio, WeightDecay: cfg.WeightDecay, MaxGradNorm: cfg.MaxGradNorm,
		Optimizer: cfg.Optimizer, Seed: uint64(cfg.Seed), EvalSteps: cfg.EvalSteps, SaveSteps: cfg.SaveSteps,
		Packing: cfg.Packing, MaxSeqLen: cfg.MaxSeqLen, GroupByLen: !cfg.Packing, ResumeFrom: cfg.Resume, Log: logger,
		BeforeFinish: func(res *train.Result) error { return r.writeRunFiles(res, header) },
	}
	var res *train.Result
	if cfg.Method == "bidora" {
		res, err = r.runBiDoRA(ctx, stdio, eng, opts, logger)
	} else {
		res, err = train.Run(ctx, eng, r.trainEx, r.valEx, opts)
	}
	logger.finish()
	if err != nil {
		if errors.Is(err, train.ErrInterrupted) {
			fmt.Fprintf(stdio.Err, "bidora: %v\n", err)
		}
		return err
	}
	return r.summary(stdio, res, time.Since(start))
}

// startLoss is the validation loss with the freshly initialised adapter (B = 0, so the
// base model's loss).
func (r *trainRun) startLoss(ctx context.Context) (float64, error) {
	eng := train.NewEngine(r.model, adapterIO{r.model, r.cfg.Model})
	loss, _, err := train.Evaluate(ctx, eng, r.valEx, r.cfg.BatchSize)
	return loss, err
}

func (r *trainRun) loadData(ctx context.Context, stdio *IO) error {
	cfg := r.cfg
	ro := dataset.ReadOptions{Strict: cfg.Strict, MaxRows: cfg.MaxSamples}
	name := cfg.TrainFile
	if cfg.Dataset != "" {
		name = cfg.Dataset + ":" + cfg.DatasetSplit
	}
	rows, bad, err := loadRows(ctx, stdio, cfg.TrainFile, cfg.Dataset, cfg.DatasetConfig, cfg.DatasetSplit, ro)
	if err != nil {
		return wrapDataErr(err)
	}
	rep := &dataReport{Bad: len(bad), BadRows: bad}
	all, err := r.pipe.encodeRows(rows, cfg.Strict, rep)
	if err != nil {
		return wrapDataErr(err)
	}
	rep.print(stdio.Err, name)
	if len(all) == 0 {
		return fmt.Errorf("%s: no usable training rows", name)
	}
	switch {
	case cfg.ValFile != "":
		vrows, vbad, err := loadRows(ctx, stdio, cfg.ValFile, "", "", "", dataset.ReadOptions{Strict: cfg.Strict})
		if err != nil {
			return wrapDataErr(err)
		}
		vrep := &dataReport{Bad: len(vbad), BadRows: vbad}
		if r.valEx, err = r.pipe.encodeRows(vrows, cfg.Strict, vrep); err != nil {
			return wrapDataErr(err)
		}
		vrep.print(stdio.Err, cfg.ValFile)
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
// and attaches the adapter.
func (r *trainRun) loadModel(ctx context.Context, stdio *IO) error {
	cfg := r.cfg
	q := cfg.Quantization
	if q == "auto" && !cfg.AutoHardware {
		q = "none"
	}
	kind := resolveAutoQuant(ctx, stdio.Err, q, r.mc, memplan.Settings{Method: cfg.Method, Rank: cfg.Rank,
		Targets: cfg.Targets, Optimizer: cfg.Optimizer, BatchSize: cfg.BatchSize, SeqLen: cfg.MaxSeqLen,
		GradCheckpointing: cfg.GradCheckpointing}, cfg.Output)
	m, err := loadQuantModel(stdio.Err, r.dir, kind, model.Options{NoCheckpointing: !cfg.GradCheckpointing, Seed: uint64(cfg.Seed)})
	if err != nil {
		return fmt.Errorf("loading model %s: %w", cfg.Model, err)
	}
	if cfg.ResumeAdapter != "" {
		err = m.LoadAdapter(cfg.ResumeAdapter)
	} else {
		err = m.AddAdapters(model.AdapterConfig{Targets: cfg.TargetModules(), Rank: cfg.Rank, Alpha: cfg.Alpha,
			Dropout: cfg.Dropout, RSLoRA: cfg.RSLoRA, DoRA: cfg.Method == "dora"})
	}
	if err != nil {
		m.Close()
		return err
	}
	r.model = m
	return nil
}

// adapterIO saves and loads the model's adapter for the trainer.
type adapterIO struct {
	m    *model.Model
	base string
}

func (a adapterIO) SaveAdapter(dir string) error { return a.m.SaveAdapter(dir, a.base) }
func (a adapterIO) LoadAdapter(dir string) error { return a.m.LoadAdapter(dir) }

// writeRunFiles writes config.yaml and the model card into the output dir.
func (r *trainRun) writeRunFiles(res *train.Result, header []string) error {
	var yml strings.Builder
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
	fmt.Fprintf(&b, "- template: %s, max sequence length %d, train on prompt: %v, packing: %v\n\n", r.pipe.enc.Template(), cfg.MaxSeqLen, cfg.TrainOnPrompt, cfg.Packing)
	fmt.Fprintf(&b, "## Hyper-parameters\n\n| setting | value |\n|---|---|\n")
	for _, kv := range [][2]any{{"method", cfg.Method}, {"rank", cfg.Rank}, {"alpha", cfg.Alpha}, {"rsLoRA", cfg.RSLoRA},
		{"dropout", cfg.Dropout}, {"targets", strings.Join(cfg.TargetModules(), ", ")}, {"epochs", cfg.Epochs},
		{"max steps", cfg.MaxSteps}, {"batch size", cfg.BatchSize}, {"grad accum", cfg.GradAccum}, {"learning rate", cfg.LR},
		{"schedule", cfg.LRScheduler}, {"warmup steps", cfg.WarmupSteps}, {"weight decay", cfg.WeightDecay},
		{"max grad norm", cfg.MaxGradNorm}, {"optimizer", cfg.Optimizer}, {"seed", cfg.Seed}} {
		fmt.Fprintf(&b, "| %v | %v |\n", kv[0], kv[1])
	}
	fmt.Fprintf(&b, "\n## Results\n\n- optimiser steps: %d\n- final training loss: %.4f\n", res.Steps, res.FinalLoss)
	if !math.IsNaN(res.FirstValLoss) {
		fmt.Fprintf(&b, "- validation loss: %.4f before training, best %.4f at step %d\n", res.FirstValLoss, res.BestValLoss, res.BestStep)
	}
	fmt.Fprintf(&b, "\nThe full configuration is in config.yaml, the per-step metrics in metrics.jsonl and the loss curves in loss.png.\n")
	return b.String()
}

func orDataset(cfg *config.Train) string {
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
	switch {
	case l.json:
		data, _ := json.Marshal(m)
		fmt.Fprintf(l.w, "%s\n", data)
	case l.bar != nil:
		l.bar.Set("loss", fmt.Sprintf("%.4f", m.Loss))
		l.bar.Set("lr", fmt.Sprintf("%.2e", m.LR))
		l.bar.Set("tok/s", fmt.Sprintf("%.0f", m.TokensPS))
		l.bar.SetCurrent(int64(m.Step))
	default:
		fmt.Fprintf(l.w, "step %d/%d epoch %.2f loss %.4f lr %.3e grad_norm %.3f tokens/s %.0f\n",
			m.Step, m.TotalStep, m.Epoch, m.Loss, m.LR, m.GradNorm, m.TokensPS)
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
