package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/internal/catalog"
	"github.com/bidora/bidora/internal/hardware"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/modelcfg"
)

// detectHardware reports the machine; tests replace it with fixed hardware.
var detectHardware = func(ctx context.Context, diskDir string) hardware.Info {
	return hardware.Detect(ctx, diskDir)
}

// gpuBackend says whether bidora can train on a GPU (not yet).
const gpuBackend = false

type trainOptions struct {
	cfg         *config.Train
	configFile  string
	printConfig bool
	// dryRun loads the tokenizer and the data, reports them and stops; jsonOut
	// makes that report JSON.
	dryRun  bool
	jsonOut bool
}

func newTrainCmd(stdio *IO) *cobra.Command {
	opts := &trainOptions{cfg: &config.Train{}}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Fine-tune a model with a LoRA, rsLoRA, DoRA or BiDoRA adapter",
		Long: `Fine-tune a base model with a parameter-efficient adapter and write it (PEFT format)
and its checkpoints to --output.

Every flag can also come from a YAML file given with --config (keys are the flag names,
with '-' or '_'); flags given on the command line override the file. With --auto-hardware
(on by default) bidora picks the quantization, batch size, grad-accum and max-seq-len that
fit this machine's memory, leaving alone the ones you set yourself; --print-config shows
the resolved configuration and why, without loading anything.`,
		Example: `  # See what would run on this machine, without loading the model
  bidora train --print-config --model Qwen/Qwen2.5-Coder-7B-Instruct --train-file data.jsonl

  # Save a resolved configuration and reuse it
  bidora train --print-config --model qwen2.5-coder-1.5b --train-file data.jsonl > run.yaml
  bidora train --config run.yaml --epochs 1

  # DoRA on all linear layers with 4-bit weights
  bidora train --dora --targets all-linear --quantization nf4 --train-file data.jsonl

  # Train on a source tree (as git sees it); see the files, the split and the skips first
  bidora train --model qwen2.5-coder-1.5b --train-dir ~/src/my-crate --lang rust --dry-run
  bidora train --model qwen2.5-coder-1.5b --train-dir ~/src/my-crate --fim-rate 0.5

  # BiDoRA with a separate validation file
  bidora train --method bidora --train-file train.jsonl --val-file val.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrain(cmd.Context(), stdio, cmd.Flags(), opts)
		},
	}
	config.AddFlags(cmd.Flags(), opts.cfg)
	cmd.Flags().StringVar(&opts.configFile, "config", "", "YAML file of settings (keys are flag names); flags override it")
	cmd.Flags().BoolVar(&opts.printConfig, "print-config", false, "print the resolved configuration (after auto-adjust) as YAML and exit")
	cmd.Flags().BoolVar(&opts.dryRun, "dry-run", false, "load the tokenizer and the data, list the files (--train-dir), the split and what was skipped and why, and stop before loading the weights")
	cmd.Flags().BoolVar(&opts.jsonOut, "json", false, `with --dry-run: print {"files":[…], "skipped":[{"path","reason"}], "val_files":[…], "duplicates":…, "counts":{…}, …}`)
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	_ = cmd.MarkFlagFilename("train-file")
	_ = cmd.MarkFlagFilename("val-file")
	_ = cmd.MarkFlagDirname("output")
	_ = cmd.MarkFlagDirname("train-dir")
	_ = cmd.MarkFlagDirname("val-dir")
	for name, values := range map[string][]string{
		"quantization": config.Quantizations, "base-dtype": config.BaseDTypes, "method": config.Methods, "lr-scheduler": config.Schedulers,
		"optimizer": config.Optimizers, "template": config.Templates, "log-format": config.LogFormats,
		"hypergrad": config.Hypergrads, "targets": append([]string{"all-linear"}, config.Projections...),
	} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
	}
	return cmd
}

// resolveTrain applies the YAML file, folds aliases, validates, and runs
// auto-adjust. It returns the plan (nil when the model's shape is unknown) and
// lines describing the model for the --print-config header.
func resolveTrain(ctx context.Context, stdio *IO, fs *pflag.FlagSet, opts *trainOptions) (*memplan.Plan, []string, error) {
	cfg := opts.cfg
	origins := config.FlagOrigins(fs)
	if opts.configFile != "" {
		if _, err := os.Stat(opts.configFile); err != nil {
			return nil, nil, usageErrorf("--config %s: %w", opts.configFile, errors.Unwrap(err))
		}
		if err := config.LoadYAML(fs, opts.configFile, origins); err != nil {
			return nil, nil, &UsageError{Err: err}
		}
	}
	if err := cfg.Resolve(origins); err != nil {
		return nil, nil, &UsageError{Err: err}
	}
	if cfg.ResumeAdapter != "" {
		if err := applyResumeAdapter(ctx, stdio, cfg, origins); err != nil {
			return nil, nil, err
		}
	}
	mc, about, err := lookupModel(cfg.Model)
	if err != nil {
		return nil, nil, err
	}
	if mc == nil {
		return nil, about, nil
	}
	baseAuto := cfg.BaseDType == "" || cfg.BaseDType == "auto"
	about = append(about, resolveConfigBaseDType(cfg, mc)...)
	info := detectHardware(ctx, cfg.Output)
	req := planRequest(cfg, origins)
	req.BaseDTypeAuto = baseAuto && cfg.AutoHardware
	if !cfg.AutoHardware {
		req.Fixed = memplan.Fixed{BatchSize: true, GradAccum: true, SeqLen: true}
		if req.Quant == memplan.QuantAuto {
			req.Quant = memplan.QuantNone // auto-adjust is off: auto means the stored precision
		}
	}
	plan := memplan.AutoAdjust(mc, req, machineOf(info))
	cfg.Quantization = string(plan.Quant)
	if plan.BaseDType != "" && plan.BaseDType != cfg.BaseDType {
		about = append(about, fmt.Sprintf("base-dtype: %s → %s (auto-adjust: an f32 base does not fit, bf16 does)", cfg.BaseDType, plan.BaseDType))
		cfg.BaseDType = plan.BaseDType
	}
	cfg.BatchSize, cfg.GradAccum, cfg.MaxSeqLen = plan.BatchSize, plan.GradAccum, plan.SeqLen
	about = append(about, computeAbout(cfg.Compute), "hardware: "+hardwareSummary(info))
	return &plan, about, nil
}

func runTrain(ctx context.Context, stdio *IO, fs *pflag.FlagSet, opts *trainOptions) error {
	if opts.jsonOut && !opts.dryRun {
		return usageErrorf("--json goes with --dry-run (training logs JSON with --log-format json)")
	}
	plan, about, err := resolveTrain(ctx, stdio, fs, opts)
	if err != nil {
		return err
	}
	if opts.dryRun && !opts.printConfig {
		return runDryRun(ctx, stdio, opts.cfg, opts.jsonOut)
	}
	header := []string{"bidora train configuration (resolved); feed it back with: bidora train --config FILE"}
	header = append(header, about...)
	if plan != nil {
		if opts.cfg.AutoHardware {
			header = append(header, "auto-adjust:")
		} else {
			header = append(header, "auto-adjust is off (--auto-hardware=false); memory check:")
		}
		for _, r := range plan.Reasons {
			header = append(header, "  - "+r)
		}
		header = append(header, "estimated peak memory: "+plan.Estimate.String())
		if !plan.Fits {
			fmt.Fprintf(stdio.Err, "bidora: warning: %s\n", plan.Reasons[len(plan.Reasons)-1])
		}
	}
	if !opts.printConfig {
		return runTraining(ctx, stdio, opts.cfg, header)
	}
	return opts.cfg.WriteYAML(stdio.Out, header)
}

// lookupModel finds a model's shape: a catalog entry, or a local directory's
// config.json. An unknown remote id gives nil (the hub is not consulted here).
func lookupModel(ref string) (*modelcfg.Config, []string, error) {
	if e, ok := catalog.Find(ref); ok {
		return &e.Config, []string{fmt.Sprintf("model: %s (%s, %s parameters, catalog)", e.ID, e.Config.ModelType, formatParams(e.Params()))}, nil
	}
	if fi, err := os.Stat(ref); err == nil && fi.IsDir() {
		mc, err := modelcfg.Load(ref)
		var fe *modelcfg.FieldError
		if errors.As(err, &fe) {
			return nil, nil, usageErrorf("--model %s: %w", ref, err) // a config.json the engine cannot run
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--model %s: %w", ref, err)
		}
		return mc, []string{fmt.Sprintf("model: %s (%s, %s parameters, local)", ref, mc.ModelType, formatParams(mc.NumParams()))}, nil
	}
	if !strings.Contains(ref, "/") {
		return nil, nil, usageErrorf("--model %s: not a local directory, a catalog preset (%s) or a HF repo id (owner/name)",
			ref, strings.Join(catalog.Presets(), ", "))
	}
	return nil, []string{fmt.Sprintf("model: %s is not in the catalog and not a local directory: auto-adjust skipped (its config.json is needed)", ref)}, nil
}

// planRequest turns a configuration into auto-adjust's request; explicitly set
// batch size, grad-accum and max-seq-len are left alone.
func planRequest(cfg *config.Train, o config.Origins) memplan.Request {
	return memplan.Request{
		Settings: withCompute(memplan.Settings{
			Quant: memplan.Quant(cfg.Quantization), BaseDType: cfg.BaseDType, Method: cfg.Method, Rank: cfg.Rank,
			Targets: cfg.Targets, Optimizer: cfg.Optimizer, BatchSize: cfg.BatchSize,
			SeqLen: cfg.MaxSeqLen, GradCheckpointing: cfg.GradCheckpointing, Dropout: cfg.Dropout,
		}, cfg.Compute),
		GradAccum: cfg.GradAccum,
		Fixed: memplan.Fixed{
			BatchSize: o.Explicit("batch-size"), GradAccum: o.Explicit("grad-accum"), SeqLen: o.Explicit("max-seq-len"),
		},
	}
}

// machineOf is the memory auto-adjust plans for on this machine.
func machineOf(info hardware.Info) memplan.Machine {
	m := memplan.Machine{RAMBytes: info.Memory.Usable(), GPUBackend: gpuBackend}
	if len(info.GPUs) > 0 {
		m.GPUName, m.GPUMemoryBytes = info.GPUs[0].Name, info.GPUs[0].MemoryBytes
	}
	return m
}

func hardwareSummary(info hardware.Info) string {
	s := fmt.Sprintf("%s, %d cores/%d threads (%d usable), %s RAM available", orUnknown(info.CPU.Model),
		info.CPU.Cores, info.CPU.Threads, info.CPU.Usable, memplan.FormatBytes(info.Memory.Usable()))
	for _, g := range info.GPUs {
		s += fmt.Sprintf(", GPU %s %s", g.Name, memplan.FormatBytes(g.MemoryBytes))
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}

// formatParams prints a parameter count as 494M or 7.62B.
func formatParams(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.0fM", float64(n)/1e6)
}
