package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/train"
)

type evalOptions struct {
	Model         string
	Adapter       string
	Data          string
	Template      string
	TrainOnPrompt bool
	MaxSeqLen     int
	BatchSize     int
	Quantization  string
	BaseDType     string
	Compute       string
	Threads       int
	JSON          bool
	MaxLineBytes  int
	Repo          evalRepoOptions // --data-dir and its filters
	fim           evalFIMOptions
}

func newEvalCmd(stdio *IO) *cobra.Command {
	opts := &evalOptions{}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Mean token loss and perplexity of a base model (+ adapter) on a dataset",
		Long: `eval computes the token-weighted mean cross-entropy over all label tokens of a dataset,
and its perplexity exp(loss), for a base model or base + PEFT adapter.

--data takes the same formats as train (JSONL, a JSON array, CSV/TSV with a header,
parquet, or a text file as one text row; chosen by extension): chat messages, instruction,
prompt/completion, text/code, or pre-tokenised {"input_ids":[…], "labels":[…]} in the HF
convention (position t predicts labels[t+1], -100 ignored, labels default to input_ids).
Text rows are rendered with --template and masked as in training (loss on responses).
A row that cannot be read is an error naming file:line: eval measures, so it never
skips rows silently. Rows longer than --max-seq-len are truncated.

--quantization holds the base's projection weights in NF4 or weight-only INT8 (quantised while
loading), as a QLoRA/QDoRA run trained them; auto picks what this machine's memory
calls for, as train does. A bitsandbytes 4-bit checkpoint is used as stored.
--base-dtype holds the weights that are not quantised as stored by default (an f32
checkpoint in f32, bf16 in bf16, f16 in bf16), or in bf16 or f32.

--fim also measures infilling, for a model with fill-in-the-middle tokens: on the text
rows, --fim-spans seeded spans per kind (one line; a block of 2 to 8 lines) are cut out,
their middle is greedy-decoded from the model's FIM prompt, and exact match and mean edit
similarity (1 − Levenshtein / the longer length, in characters; trailing white space
ignored) are printed under the loss ("fim" in --json).`,
		Example: `  bidora eval --model ./Qwen2.5-0.5B --data val.jsonl
  bidora eval --model ../shared/models/code14m --adapter ./output --data-dir ./held-out-crate --lang rust
  bidora eval --model Qwen/Qwen2.5-Coder-1.5B-Instruct --adapter ./output --data val.jsonl --json
  bidora eval --model ../shared/models/code14m --data rows.jsonl --template plain
  bidora eval --model qwen2.5-coder-7b --adapter ./qlora-out --data val.jsonl --quantization nf4
  bidora eval --model qwen2.5-coder-1.5b --adapter ./output --data held-out.jsonl --fim --fim-spans 50 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(cmd.Context(), stdio, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Model, "model", "", "base model: local HF directory, HF repo id or catalog preset")
	f.StringVar(&opts.Adapter, "adapter", "", "PEFT adapter directory or HF repo id (optional)")
	f.StringVar(&opts.Data, "data", "", "data file (JSONL/JSON/CSV/TSV/Parquet/text), same formats as train")
	f.StringVar(&opts.Template, "template", "auto", "prompt template for text rows: auto, chat, alpaca or plain")
	f.BoolVar(&opts.TrainOnPrompt, "train-on-prompt", false, "count prompt tokens in the loss too")
	f.IntVar(&opts.MaxSeqLen, "max-seq-len", 2048, "truncate rows to this many tokens")
	f.IntVar(&opts.BatchSize, "batch-size", 4, "rows per forward pass")
	f.StringVar(&opts.Quantization, "quantization", "auto", quantUsage)
	f.StringVar(&opts.BaseDType, "base-dtype", "auto", baseDTypeUsage)
	f.StringVar(&opts.Compute, "compute", "auto", config.ComputeUsage)
	f.IntVar(&opts.Threads, "threads", 0, "worker threads (0 = all cores)")
	f.BoolVar(&opts.JSON, "json", false, `print {"loss":…, "perplexity":…, "tokens":…}`)
	f.IntVar(&opts.MaxLineBytes, "max-line-bytes", dataset.DefaultMaxLineBytes, "longest data row in bytes (a JSONL line, JSON array element, CSV record or text file)")
	addEvalFIMFlags(f, &opts.fim)
	addEvalRepoFlags(f, &opts.Repo)
	_ = cmd.RegisterFlagCompletionFunc("quantization", cobra.FixedCompletions(config.Quantizations, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("base-dtype", cobra.FixedCompletions(config.BaseDTypes, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// evalResult is the JSON report of eval (a stable contract for scripts).
type evalResult struct {
	Loss       float64 `json:"loss"`
	Perplexity float64 `json:"perplexity"`
	Tokens     int     `json:"tokens"`
	// FIM holds the infilling scores of --fim.
	FIM *fimEvalResult `json:"fim,omitempty"`
}

func runEval(ctx context.Context, stdio *IO, opts *evalOptions) error {
	switch {
	case opts.Model == "":
		return usageErrorf("--model is required")
	case opts.MaxSeqLen < 2:
		return usageErrorf("--max-seq-len must be at least 2, got %d", opts.MaxSeqLen)
	case opts.BatchSize < 1:
		return usageErrorf("--batch-size must be at least 1, got %d", opts.BatchSize)
	case opts.Threads < 0:
		return usageErrorf("--threads must be 0 (all cores) or positive, got %d", opts.Threads)
	case opts.MaxLineBytes < 0:
		return usageErrorf("--max-line-bytes must be positive (0 = the default %s), got %d", dataset.FormatBytes(dataset.DefaultMaxLineBytes), opts.MaxLineBytes)
	}
	if err := checkEvalFIMFlags(&opts.fim); err != nil {
		return err
	}
	if err := checkEvalRepo(opts.Data, &opts.Repo); err != nil {
		return err
	}
	q, err := parseQuantFlag(opts.Quantization)
	if err != nil {
		return err
	}
	compute, err := parseComputeFlag(opts.Compute)
	if err != nil {
		return err
	}
	baseDType, err := parseBaseDTypeFlag(opts.BaseDType)
	if err != nil {
		return err
	}
	if opts.Threads > 0 {
		kernels.SetThreads(opts.Threads)
	}
	var rows []dataset.Row
	if len(opts.Repo.DataDir) == 0 {
		if rows, _, err = dataset.ReadPath(ctx, opts.Data, dataset.ReadOptions{Strict: true, MaxLineBytes: opts.MaxLineBytes}); err != nil {
			return readErr(err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("%s: no rows", opts.Data)
		}
	}
	dir, err := resolveModelDir(ctx, stdio, "--model", opts.Model)
	if err != nil {
		return err
	}
	mc, err := modelcfg.Load(dir)
	if err != nil {
		return err
	}
	if len(opts.Repo.DataDir) > 0 {
		if rows, err = evalRepoRows(ctx, stdio, dir, mc, opts); err != nil {
			return err
		}
	}
	examples, err := encodeEvalRows(dir, mc, rows, opts)
	if err != nil {
		return err
	}
	var infill *evalFIM
	if opts.fim.On {
		if infill, err = prepareEvalFIM(dir, mc, rows, opts); err != nil {
			return err
		}
	}
	base, _ := resolveBaseDType(baseDType, dir, mc)
	kind := resolveAutoQuant(ctx, stdio.Err, q, mc, memplan.Settings{BatchSize: opts.BatchSize, SeqLen: opts.MaxSeqLen,
		GradCheckpointing: true, BaseDType: string(base)}, ".")
	m, err := loadQuantModel(stdio.Err, dir, kind, model.Options{BaseDType: base, Compute: compute})
	if err != nil {
		return err
	}
	defer m.Close()
	if opts.Adapter != "" {
		adir, err := resolveModelDir(ctx, stdio, "--adapter", opts.Adapter)
		if err != nil {
			return err
		}
		if err := m.LoadAdapter(adir); err != nil {
			return err
		}
	}
	loss, tokens, err := train.Evaluate(ctx, m, examples, opts.BatchSize)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Data, err)
	}
	out := evalResult{Loss: loss, Perplexity: math.Exp(loss), Tokens: tokens}
	if opts.fim.On {
		if out.FIM, err = infill.run(ctx, m); err != nil {
			return err
		}
	}
	if opts.JSON {
		return json.NewEncoder(stdio.Out).Encode(out)
	}
	fmt.Fprintf(stdio.Out, "loss %.6f  perplexity %.4f  tokens %d  rows %d\n", out.Loss, out.Perplexity, out.Tokens, len(examples))
	if out.FIM != nil {
		out.FIM.print(stdio.Out)
	}
	return nil
}

// encodeEvalRows tokenises rows; the tokenizer is loaded only when some row is text.
// Every id is checked against the model's vocabulary. Rows left with no label token
// (all masked) count zero tokens rather than failing.
func encodeEvalRows(dir string, mc *modelcfg.Config, rows []dataset.Row, opts *evalOptions) ([]dataset.Example, error) {
	enc, err := dataset.NewEncoder(nil, dataset.EncodeOptions{Template: dataset.TemplatePlain, MaxSeqLen: opts.MaxSeqLen, VocabSize: mc.VocabSize})
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(rows, func(r dataset.Row) bool { return r.Kind != dataset.KindTokens }) {
		pipe, err := newTextPipeline(dir, mc, opts.Template, opts.TrainOnPrompt, opts.MaxSeqLen)
		if err != nil {
			return nil, err
		}
		enc = pipe.enc
	}
	var out []dataset.Example
	for _, r := range rows {
		ex, _, err := enc.Encode(r)
		if err != nil && !errors.Is(err, dataset.ErrNoTrainable) {
			return nil, fmt.Errorf("%s: %w", r.Source, err)
		}
		out = append(out, ex)
	}
	return out, nil
}
