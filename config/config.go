// Package config is the typed configuration of `bidora train`. One table of
// field definitions (fields) drives the command-line flags, the YAML keys (flag
// names, with '-' or '_'), the defaults, validation and the YAML that
// --print-config writes, so the four cannot drift apart.
//
// Precedence is defaults < YAML file < flags: build a flag set with NewFlagSet
// (or AddFlags), parse the command line, then ApplyYAML, which sets only the
// keys whose flag was not given.
package config

import (
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Train is the full configuration of a training run.
type Train struct {
	// Model
	Model        string
	Quantization string
	BaseDType    string

	// Adapter
	Method        string
	Rank          int
	Alpha         float64
	Dropout       float64
	Targets       []string
	RSLoRA        bool
	ResumeAdapter string

	// Training
	Output            string
	Overwrite         bool
	Epochs            int
	MaxSteps          int
	BatchSize         int
	GradAccum         int
	LR                float64
	LRScheduler       string
	WarmupSteps       int
	WarmupRatio       float64
	WeightDecay       float64
	MaxGradNorm       float64
	Optimizer         string
	Seed              int64
	GradCheckpointing bool
	EvalSteps         int
	SaveSteps         int
	SaveTotalLimit    int
	Resume            string
	LogFormat         string

	// Data
	TrainFile     string
	ValFile       string
	Dataset       string
	DatasetConfig string
	DatasetSplit  string
	MaxSeqLen     int
	MaxSamples    int
	MaxLineBytes  int
	ValSplit      float64
	Template      string
	TrainOnPrompt bool
	Packing       bool
	Strict        bool

	// Repository data (source trees as documents) and fill-in-the-middle
	TrainDir        []string
	ValDir          []string
	Include         []string
	Exclude         []string
	Lang            []string
	MaxFileBytes    int64
	DedupeThreshold float64
	FIMRate         float64
	FIMMode         string
	FIMLoss         string

	// Hardware
	AutoHardware bool
	Threads      int
	Compute      string

	// BiDoRA
	UpperLRMult float64
	OuterSplit  float64
	OrthReg     float64
	Hypergrad   string
	NoRetrain   bool

	// dora is the --dora alias; Resolve folds it into Method.
	dora bool
}

// Groups in display order.
var Groups = []string{"Model", "Adapter", "Training", "Data", "Hardware", "BiDoRA"}

// Allowed values of the enumerated settings.
var (
	Quantizations = []string{"auto", "nf4", "int8", "none"}
	BaseDTypes    = []string{"auto", "bf16", "f32"}
	Methods       = []string{"lora", "dora", "bidora"}
	Schedulers    = []string{"cosine", "linear", "constant"}
	Optimizers    = []string{"adamw", "sgd"}
	Templates     = []string{"auto", "chat", "alpaca", "plain"}
	LogFormats    = []string{"text", "json"}
	FIMModes      = []string{"psm", "spm"}
	FIMLosses     = []string{"all", "middle"}
	Computes      = []string{"auto", "bf16", "f32"}
	Hypergrads    = []string{"second-order", "first-order"}
	// Projections are the valid --targets entries besides "all-linear".
	Projections = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
)

// ComputeUsage is the help of --compute (train's, and eval's and bench's).
const ComputeUsage = "precision of the frozen-weight products: bf16 (activations rounded to bf16, f32 accumulation, as bf16 autocast), f32, or auto (bf16 where the CPU has native bf16 dot products)"

// DefaultModel is the model trained when --model is not given.
const DefaultModel = "Qwen/Qwen2.5-Coder-7B-Instruct"

// Field is one setting: a flag, a YAML key and a struct field.
type Field struct {
	Name    string // kebab-case flag name and YAML key
	Group   string
	Usage   string
	Allowed []string // enumerated values, nil when free
	ptr     any      // *string, *int, *int64, *float64, *bool or *[]string into a Train
	def     any      // default, same type as *ptr
}

// fields is the one table everything derives from.
func (t *Train) fields() []Field {
	return []Field{
		{"model", "Model", "base model: HF repo id, local directory or catalog preset (see list-models)", nil, &t.Model, DefaultModel},
		{"quantization", "Model", "frozen projection weights: auto (chosen from memory), nf4 (4-bit NormalFloat, QLoRA), int8 (weight-only, per-row absmax; not LLM.int8) or none (not quantised: held in --base-dtype)", Quantizations, &t.Quantization, "auto"},
		{"base-dtype", "Model", "frozen weights that are not quantised (embeddings, LM head; the projections with --quantization none): auto (as stored: f32 stays f32, bf16 stays bf16, f16 becomes bf16), bf16 (half the memory of f32) or f32 (exact)", BaseDTypes, &t.BaseDType, "auto"},

		{"method", "Adapter", "adapter: lora, dora or bidora (bidora = bilevel DoRA: only for a few rows trained for many epochs, where the adapter overfits; costs 2× the optimiser steps and 2.5–4× DoRA's time; try DoRA with fewer epochs first; --hypergrad first-order is the cheaper variant)", Methods, &t.Method, "lora"},
		{"rank", "Adapter", "adapter rank r", nil, &t.Rank, 8},
		{"alpha", "Adapter", "adapter scaling alpha", nil, &t.Alpha, 16.0},
		{"dropout", "Adapter", "dropout on the adapter input, in [0,1)", nil, &t.Dropout, 0.05},
		{"targets", "Adapter", "projections to adapt: comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, or all-linear", nil, &t.Targets, []string{"q_proj", "k_proj", "v_proj", "o_proj"}},
		{"rslora", "Adapter", "rank-stabilised scaling alpha/sqrt(r) instead of alpha/r", nil, &t.RSLoRA, true},
		{"resume-adapter", "Adapter", "PEFT adapter directory to start from (its rank, alpha, targets, rsLoRA and DoRA apply)", nil, &t.ResumeAdapter, ""},

		{"output", "Training", "output directory for the adapter and checkpoints", nil, &t.Output, "./output"},
		{"overwrite", "Training", "reuse a non-empty output directory", nil, &t.Overwrite, false},
		{"epochs", "Training", "passes over the training data", nil, &t.Epochs, 3},
		{"max-steps", "Training", "stop after this many optimizer steps (0 = from --epochs); with --method bidora it bounds each phase (search, retrain)", nil, &t.MaxSteps, 0},
		{"batch-size", "Training", "sequences per forward/backward pass", nil, &t.BatchSize, 4},
		{"grad-accum", "Training", "passes accumulated per optimizer step", nil, &t.GradAccum, 4},
		{"lr", "Training", "peak learning rate", nil, &t.LR, 2e-4},
		{"lr-scheduler", "Training", "learning-rate schedule after warmup", Schedulers, &t.LRScheduler, "cosine"},
		{"warmup-steps", "Training", "linear warmup steps (ignored when --warmup-ratio is set)", nil, &t.WarmupSteps, 100},
		{"warmup-ratio", "Training", "warmup as a fraction of all steps, in [0,1) (0 = use --warmup-steps)", nil, &t.WarmupRatio, 0.0},
		{"weight-decay", "Training", "AdamW decoupled weight decay", nil, &t.WeightDecay, 0.01},
		{"max-grad-norm", "Training", "clip the global gradient norm (0 = off)", nil, &t.MaxGradNorm, 1.0},
		{"optimizer", "Training", "optimizer", Optimizers, &t.Optimizer, "adamw"},
		{"seed", "Training", "random seed (init, dropout, shuffling, splits)", nil, &t.Seed, int64(42)},
		{"grad-checkpointing", "Training", "recompute activations per layer in the backward pass (saves memory)", nil, &t.GradCheckpointing, true},
		{"eval-steps", "Training", "validate every N optimizer steps (0 = at the end of each epoch)", nil, &t.EvalSteps, 100},
		{"save-steps", "Training", "write a checkpoint every N optimizer steps (0 = only at the end)", nil, &t.SaveSteps, 500},
		{"save-total-limit", "Training", "keep only the newest N checkpoints, and the best by validation loss (0 = keep all)", nil, &t.SaveTotalLimit, 0},
		{"resume", "Training", "checkpoint to continue from exactly: a checkpoint-N directory, the output directory or \"latest\" (its newest complete checkpoint)", nil, &t.Resume, ""},
		{"log-format", "Training", "progress log format", LogFormats, &t.LogFormat, "text"},

		{"train-file", "Data", "training data file (JSONL/JSON/CSV/Parquet/text)", nil, &t.TrainFile, ""},
		{"val-file", "Data", "validation data file (default: split off --val-split of the training data)", nil, &t.ValFile, ""},
		{"dataset", "Data", "HF dataset id (instead of --train-file)", nil, &t.Dataset, ""},
		{"dataset-config", "Data", "HF dataset configuration (subset) name", nil, &t.DatasetConfig, ""},
		{"dataset-split", "Data", "HF dataset split to train on", nil, &t.DatasetSplit, "train"},
		{"max-seq-len", "Data", "longest tokenised example; longer ones are truncated", nil, &t.MaxSeqLen, 2048},
		{"max-samples", "Data", "use at most this many training examples (0 = all)", nil, &t.MaxSamples, 0},
		{"max-line-bytes", "Data", "longest data row in bytes: a JSONL line, JSON array element, CSV record or text file (0 = 64 MiB)", nil, &t.MaxLineBytes, 0},
		{"val-split", "Data", "fraction of the training data held out for validation, in [0,1) (0 = none); with --train-dir a fraction of the files, whole files", nil, &t.ValSplit, 0.1},
		{"template", "Data", "prompt format", Templates, &t.Template, "auto"},
		{"train-on-prompt", "Data", "also train on prompt tokens (default: completion only)", nil, &t.TrainOnPrompt, false},
		{"packing", "Data", "pack several examples into each sequence", nil, &t.Packing, false},
		{"strict", "Data", "treat malformed data rows as fatal (default: skip and count)", nil, &t.Strict, false},
		{"train-dir", "Data", "source tree to train on, one document per file, as git sees it (.gitignore honoured; DIR or a git repository at a revision, DIR@REV); repeatable", nil, &t.TrainDir, []string(nil)},
		{"val-dir", "Data", "source tree of held-out files for validation (instead of splitting files off --train-dir)", nil, &t.ValDir, []string(nil)},
		{"include", "Data", "with --train-dir: only files whose repository path matches one of these globs (e.g. 'src/**/*.rs')", nil, &t.Include, []string(nil)},
		{"exclude", "Data", "with --train-dir: skip files whose repository path matches one of these globs", nil, &t.Exclude, []string(nil)},
		{"lang", "Data", "with --train-dir: only files of these languages, by extension (e.g. rust,python,openscad)", nil, &t.Lang, []string(nil)},
		{"max-file-bytes", "Data", "with --train-dir: skip files larger than this many bytes", nil, &t.MaxFileBytes, int64(1 << 20)},
		{"dedupe-threshold", "Data", "with --train-dir: drop a file whose estimated Jaccard similarity (MinHash of 5-gram shingles) to a kept file is at least this, in (0,1] (1 = exact duplicates only)", nil, &t.DedupeThreshold, 0.85},
		{"fim-rate", "Data", "share of text documents turned into fill-in-the-middle examples, in [0,1] (needs a tokenizer with FIM tokens)", nil, &t.FIMRate, 0.0},
		{"fim-mode", "Data", "fill-in-the-middle order: psm (prefix, suffix, middle) or spm (suffix, prefix, middle)", FIMModes, &t.FIMMode, "psm"},
		{"fim-loss", "Data", "fill-in-the-middle examples train on all tokens or only the middle", FIMLosses, &t.FIMLoss, "all"},

		{"auto-hardware", "Hardware", "pick quantization, batch size, grad-accum and max-seq-len to fit memory", nil, &t.AutoHardware, true},
		{"threads", "Hardware", "CPU threads (0 = all usable cores)", nil, &t.Threads, 0},
		{"compute", "Hardware", ComputeUsage, Computes, &t.Compute, "auto"},

		{"upper-lr-mult", "BiDoRA", "BiDoRA: magnitude (upper level) learning rate = lr × this", nil, &t.UpperLRMult, 2.0},
		{"outer-split", "BiDoRA", "BiDoRA: share of the training rows the magnitudes (upper level) train on; validation data is only ever evaluated", nil, &t.OuterSplit, 0.2},
		{"orth-reg", "BiDoRA", "BiDoRA: orthogonality regulariser weight on the direction", nil, &t.OrthReg, 1e-5},
		{"hypergrad", "BiDoRA", "BiDoRA: hypergradient approximation", Hypergrads, &t.Hypergrad, "second-order"},
		{"no-retrain", "BiDoRA", "BiDoRA: skip the final direction retraining on all training rows", nil, &t.NoRetrain, false},
	}
}

// Fields returns the setting definitions bound to t.
func (t *Train) Fields() []Field { return t.fields() }

// Default returns the configuration with every default applied.
func Default() *Train {
	t := &Train{}
	for _, f := range t.fields() {
		switch p := f.ptr.(type) {
		case *string:
			*p = f.def.(string)
		case *int:
			*p = f.def.(int)
		case *int64:
			*p = f.def.(int64)
		case *float64:
			*p = f.def.(float64)
		case *bool:
			*p = f.def.(bool)
		case *[]string:
			*p = slices.Clone(f.def.([]string))
		}
	}
	return t
}

// AddFlags registers one flag per field on fs, writing into t, with the
// table's defaults. It also registers --dora, the alias of --method dora.
func AddFlags(fs *pflag.FlagSet, t *Train) {
	for _, f := range t.fields() {
		usage := f.Usage
		if f.Allowed != nil && !strings.Contains(usage, strings.Join(f.Allowed, ", ")) {
			usage += " (" + strings.Join(f.Allowed, "|") + ")"
		}
		switch p := f.ptr.(type) {
		case *string:
			fs.StringVar(p, f.Name, f.def.(string), usage)
		case *int:
			fs.IntVar(p, f.Name, f.def.(int), usage)
		case *int64:
			fs.Int64Var(p, f.Name, f.def.(int64), usage)
		case *float64:
			fs.Float64Var(p, f.Name, f.def.(float64), usage)
		case *bool:
			fs.BoolVar(p, f.Name, f.def.(bool), usage)
		case *[]string:
			fs.StringSliceVar(p, f.Name, f.def.([]string), usage)
		}
	}
	fs.BoolVar(&t.dora, DoraFlag, false, "alias of --method dora")
}

// DoraFlag is the alias flag for --method dora.
const DoraFlag = "dora"

// NewFlagSet returns a flag set bound to t, for use without cobra.
func NewFlagSet(t *Train) *pflag.FlagSet {
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	AddFlags(fs, t)
	return fs
}

// Names lists every YAML key / flag name in table order (including "dora").
func Names() []string {
	var out []string
	for _, f := range (&Train{}).fields() {
		out = append(out, f.Name)
	}
	return append(out, DoraFlag)
}

// TargetModules expands Targets ("all-linear" → all seven projections).
func (t *Train) TargetModules() []string {
	if slices.Contains(t.Targets, "all-linear") {
		return slices.Clone(Projections)
	}
	return slices.Clone(t.Targets)
}

// Origins records where each explicitly set value came from, for messages:
// "--rank" for a flag, "run.yaml:12: rank" for a YAML key. Keys are flag names.
type Origins map[string]string

// Where names the origin of a setting: its YAML position or its flag.
func (o Origins) Where(name string) string {
	if w, ok := o[name]; ok {
		return w
	}
	return "--" + name
}

// Explicit reports whether the setting was given (flag or YAML) rather than defaulted.
func (o Origins) Explicit(name string) bool { _, ok := o[name]; return ok }

// FlagOrigins records the flags set on the command line.
func FlagOrigins(fs *pflag.FlagSet) Origins {
	o := Origins{}
	fs.Visit(func(f *pflag.Flag) { o[f.Name] = "--" + f.Name })
	return o
}
