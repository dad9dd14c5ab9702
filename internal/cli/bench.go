package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/internal/catalog"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/train"
)

type benchOptions struct {
	Arch         string
	Preset       string
	SeqLen       int
	BatchSize    int
	Steps        int
	Rank         int
	Alpha        float64
	Targets      string
	Method       string
	Quantization string
	Threads      int
	NoCheckpoint bool
	F32Weights   bool
	Compute      string
	JSON         bool
}

func newBenchCmd(stdio *IO) *cobra.Command {
	opts := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Training-step throughput and memory on a random model of a named shape",
		Long: `bench builds a model of a preset's shape with random weights (no download) and times
full LoRA/DoRA training steps: forward, loss, backward and an AdamW update of the
adapter parameters. It reports tokens/s (from the median step), every step's time,
the effective GFLOP/s (matrix FLOPs actually run, including checkpointing's
recomputation) and the process's peak resident memory.

With --quantization nf4 or int8 the projection weights are drawn one at a time and
quantised before the next is drawn (QLoRA / QDoRA), so a 7B model never exists in
bf16; auto picks what this machine's memory calls for, as train does.`,
		Example: `  bidora bench --preset qwen2.5-0.5b --seq-len 512 --json
  bidora bench --preset llama-3.2-1b --seq-len 1024 --method dora --targets q_proj,v_proj
  bidora bench --preset qwen2.5-coder-7b --quantization nf4 --steps 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), stdio, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Arch, "arch", "", "override the preset's architecture: llama or qwen2")
	f.StringVar(&opts.Preset, "preset", "qwen2.5-0.5b", "model shape: "+strings.Join(catalog.Presets(), ", "))
	f.IntVar(&opts.SeqLen, "seq-len", 512, "tokens per row")
	f.IntVar(&opts.BatchSize, "batch-size", 1, "rows per step")
	f.IntVar(&opts.Steps, "steps", 3, "timed steps (after one warm-up step)")
	f.IntVar(&opts.Rank, "rank", 8, "adapter rank")
	f.Float64Var(&opts.Alpha, "alpha", 16, "adapter alpha")
	f.StringVar(&opts.Targets, "targets", "all-linear", "comma-separated projections or all-linear")
	f.StringVar(&opts.Method, "method", "lora", "lora or dora")
	f.StringVar(&opts.Quantization, "quantization", "none", "frozen projection weights: none (bf16), nf4 (4-bit NormalFloat, QLoRA), int8 (weight-only, per-row absmax; not LLM.int8) or auto (chosen from memory)")
	f.IntVar(&opts.Threads, "threads", 0, "worker threads (0 = all cores)")
	f.BoolVar(&opts.NoCheckpoint, "no-grad-checkpointing", false, "keep all activations instead of recomputing them")
	f.BoolVar(&opts.F32Weights, "f32-weights", false, "hold the frozen weights in f32 instead of bf16")
	f.StringVar(&opts.Compute, "compute", "auto", config.ComputeUsage)
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// benchResult is the JSON report of bench (a stable contract for scripts) plus context.
type benchResult struct {
	TokensPerS  float64   `json:"tokens_per_s"`
	StepSeconds []float64 `json:"step_seconds"`
	GFLOPS      float64   `json:"gflops"`
	PeakRSSMB   float64   `json:"peak_rss_mb"`
	Preset      string    `json:"preset"`
	Arch        string    `json:"arch"`
	SeqLen      int       `json:"seq_len"`
	BatchSize   int       `json:"batch_size"`
	Method      string    `json:"method"`
	Rank        int       `json:"rank"`
	Targets     string    `json:"targets"`
	Threads     int       `json:"threads"`
	Checkpoint  bool      `json:"grad_checkpointing"`
	Params      int64     `json:"base_params"`
	Trainable   int       `json:"trainable_params"`
	StepGFLOP   float64   `json:"step_gflop"`
	Loss        float64   `json:"loss"`
	// Quantization is how the projections were held (none, nf4, int8) and WeightsMB
	// the frozen weights' memory in MiB; LoadSeconds the time to build (and quantise)
	// them.
	Quantization string  `json:"quantization"`
	WeightsMB    float64 `json:"weights_mb"`
	LoadSeconds  float64 `json:"load_seconds"`
	// Compute is the precision of the frozen products (bf16 or f32, --compute resolved).
	Compute string `json:"compute"`
}

func runBench(ctx context.Context, stdio *IO, opts *benchOptions) error {
	entry, ok := catalog.Find(opts.Preset)
	if !ok {
		return usageErrorf("--preset %q is unknown; known: %s", opts.Preset, strings.Join(catalog.Presets(), ", "))
	}
	cfg := entry.Config
	switch opts.Arch {
	case "":
	case "llama", "qwen2":
		cfg.ModelType = opts.Arch
	default:
		return usageErrorf("--arch must be llama or qwen2, got %q", opts.Arch)
	}
	switch {
	case opts.SeqLen < 2:
		return usageErrorf("--seq-len must be at least 2, got %d", opts.SeqLen)
	case opts.BatchSize < 1:
		return usageErrorf("--batch-size must be at least 1, got %d", opts.BatchSize)
	case opts.Steps < 1:
		return usageErrorf("--steps must be at least 1, got %d", opts.Steps)
	case opts.Rank < 1:
		return usageErrorf("--rank must be at least 1, got %d", opts.Rank)
	case opts.Method != "lora" && opts.Method != "dora":
		return usageErrorf("--method must be lora or dora, got %q", opts.Method)
	case opts.Threads < 0:
		return usageErrorf("--threads must be 0 (all cores) or positive, got %d", opts.Threads)
	}
	q, err := parseQuantFlag(opts.Quantization)
	if err != nil {
		return err
	}
	compute, err := parseComputeFlag(opts.Compute)
	if err != nil {
		return err
	}
	if opts.Threads > 0 {
		kernels.SetThreads(opts.Threads)
	}
	kind := resolveAutoQuant(ctx, stdio.Err, q, &cfg, withCompute(memplan.Settings{Method: opts.Method, Rank: opts.Rank,
		Targets: strings.Split(opts.Targets, ","), BatchSize: opts.BatchSize, SeqLen: opts.SeqLen,
		GradCheckpointing: !opts.NoCheckpoint}, opts.Compute), ".")
	t0 := time.Now()
	m, err := model.New(&cfg, model.Options{NoCheckpointing: opts.NoCheckpoint, F32Weights: opts.F32Weights, Seed: 1, Quant: kind, Compute: compute})
	if err != nil {
		return err
	}
	loadSeconds := time.Since(t0).Seconds()
	ac := model.AdapterConfig{Targets: strings.Split(opts.Targets, ","), Rank: opts.Rank, Alpha: opts.Alpha, DoRA: opts.Method == "dora"}
	if err := m.AddAdapters(ac); err != nil {
		return &UsageError{Err: fmt.Errorf("--targets: %w", err)}
	}
	trainable := 0
	for _, p := range m.Params() {
		trainable += len(p.Data)
	}
	// One optimiser step exactly as training makes it (package train's plain stepper).
	stepper := &train.Plain{Model: m, Opt: optim.NewAdamW(0.01)}
	B, T := opts.BatchSize, opts.SeqLen
	batch := dataset.Batch{B: B, T: T, InputIDs: make([]int32, B*T), Labels: make([]int32, B*T)}
	for i := range batch.InputIDs {
		id := int32(uint32(i*2654435761) % uint32(cfg.VocabSize))
		batch.InputIDs[i], batch.Labels[i] = id, id
	}
	s := train.Step{Group: []dataset.Batch{batch}, LR: 1e-4}
	step := func() (float64, error) {
		stats, err := stepper.Step(ctx, &s)
		return stats.Loss, err
	}
	if _, err := step(); err != nil { // warm-up: allocates the workspace
		return err
	}
	res := benchResult{Preset: opts.Preset, Arch: cfg.ModelType, SeqLen: T, BatchSize: B, Method: opts.Method,
		Rank: opts.Rank, Targets: opts.Targets, Threads: kernels.Threads(), Checkpoint: !opts.NoCheckpoint,
		Params: cfg.NumParams(), Trainable: trainable, StepGFLOP: m.FLOPs(B, T, true) / 1e9,
		Quantization: string(m.Quantization()), WeightsMB: float64(m.WeightBytes()) / (1 << 20), LoadSeconds: loadSeconds, Compute: string(m.Compute())}
	for i := 0; i < opts.Steps; i++ {
		t0 := time.Now()
		loss, err := step()
		if err != nil {
			return err
		}
		res.StepSeconds = append(res.StepSeconds, time.Since(t0).Seconds())
		res.Loss = loss
		if !opts.JSON {
			fmt.Fprintf(stdio.Err, "step %d/%d: %.3fs loss %.4f\n", i+1, opts.Steps, res.StepSeconds[i], loss)
		}
	}
	med := median(res.StepSeconds)
	res.TokensPerS = float64(B*T) / med
	res.GFLOPS = res.StepGFLOP / med
	res.PeakRSSMB = peakRSSMB()
	if opts.JSON {
		return json.NewEncoder(stdio.Out).Encode(res)
	}
	fmt.Fprintf(stdio.Out, "%s (%s, %.2fB params, %s weights %.0f MB) %s r=%d on %s, batch %d×%d, %d threads, checkpointing %v, compute %s\n",
		res.Preset, res.Arch, float64(res.Params)/1e9, weightsName(res.Quantization, opts.F32Weights), res.WeightsMB,
		res.Method, res.Rank, res.Targets, B, T, res.Threads, res.Checkpoint, res.Compute)
	fmt.Fprintf(stdio.Out, "tokens/s %.1f  step %.3fs (median of %d)  %.1f GFLOP/s  peak RSS %.0f MB\n",
		res.TokensPerS, med, len(res.StepSeconds), res.GFLOPS, res.PeakRSSMB)
	fmt.Fprintln(stdio.Out, kernels.PeakFLOPsPerCycle().Describe(res.GFLOPS, res.Threads))
	return nil
}

// weightsName names the projections' format for the report line.
func weightsName(q string, f32 bool) string {
	switch {
	case q != "none" && q != "":
		return q
	case f32:
		return "f32"
	}
	return "bf16"
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
