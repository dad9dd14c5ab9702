package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/hub"
	"github.com/bidora/bidora/internal/atomicfile"
	"github.com/bidora/bidora/merge"
	"github.com/bidora/bidora/safetensors"
)

type mergeOptions struct {
	Model        string
	Adapter      string
	Output       string
	DType        string
	MaxShardSize string
	Overwrite    bool
	JSON         bool
}

func newMergeCmd(stdio *IO) *cobra.Command {
	opts := &mergeOptions{}
	cmd := &cobra.Command{
		Use:   "merge",
		Short: "Fold a LoRA/DoRA adapter into the base weights; writes a HF model dir",
		Long: `merge folds a PEFT LoRA, rsLoRA or DoRA adapter into its base model's weights
and writes a complete HuggingFace model directory: config.json, tokenizer and
generation files, and the weights as model.safetensors or as shards with
model.safetensors.index.json.

  LoRA  W' = W + s·B·A        (s = alpha/r, alpha/√r with rsLoRA; rank/alpha patterns honoured)
  DoRA  W' = (m / ‖W + s·B·A‖_row) ⊙ (W + s·B·A)

Weights are computed in float32 and written in --dtype (default: the base's own
dtype). The base is streamed tensor by tensor, so memory stays near one tensor.

Every file is written in full to a temporary directory inside --output and
renamed into place only when all are complete, config.json last. --output is
locked while merge runs; another bidora run using it makes merge fail at once.
With --overwrite, merge replaces only the files it writes and keeps every other
file in --output. An --output that is, contains or lies inside --model or
--adapter is refused, as is one that is a symlink or not a directory.`,
		Example: `  bidora merge --model Qwen/Qwen2.5-Coder-7B-Instruct --adapter ./output --output ./merged
  bidora merge --model ./base --adapter ./output --output ./merged --dtype f16 --max-shard-size 2GB
  bidora merge --model ./base --adapter ./output --output ./merged --overwrite --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMerge(cmd.Context(), stdio, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Model, "model", "", "base model: local directory or HF repo id")
	f.StringVar(&opts.Adapter, "adapter", "", "PEFT adapter: local directory or HF repo id")
	f.StringVar(&opts.Output, "output", "", "directory to write the merged model to")
	f.StringVar(&opts.DType, "dtype", "", "weight dtype: bf16, f16 or f32 (default: the base's)")
	f.StringVar(&opts.MaxShardSize, "max-shard-size", "5GB", "largest weight file, e.g. 5GB, 500MB, 2GiB")
	f.BoolVar(&opts.Overwrite, "overwrite", false, "merge into a non-empty --output, replacing the files merge writes and keeping the rest")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// parseDType maps a --dtype flag value to a safetensors dtype ("" stays "").
func parseDType(flag, s string) (safetensors.DType, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "bf16", "bfloat16":
		return safetensors.BF16, nil
	case "f16", "fp16", "float16":
		return safetensors.F16, nil
	case "f32", "fp32", "float32":
		return safetensors.F32, nil
	}
	return "", usageErrorf("%s %q: want bf16, f16 or f32", flag, s)
}

func runMerge(ctx context.Context, stdio *IO, opts *mergeOptions) error {
	switch {
	case opts.Model == "":
		return usageErrorf("--model is required")
	case opts.Adapter == "":
		return usageErrorf("--adapter is required")
	case opts.Output == "":
		return usageErrorf("--output is required")
	}
	dt, err := parseDType("--dtype", opts.DType)
	if err != nil {
		return err
	}
	maxShard, err := merge.ParseSize(opts.MaxShardSize)
	if err != nil {
		return usageErrorf("--max-shard-size: %v", err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	baseDir, err := hub.ResolveModel(ctx, opts.Model)
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	adapterDir, err := hub.ResolveModel(ctx, opts.Adapter)
	if err != nil {
		return fmt.Errorf("--adapter: %w", err)
	}
	res, err := merge.Merge(ctx, baseDir, adapterDir, opts.Output, merge.Options{
		DType: dt, MaxShardSize: maxShard, Overwrite: opts.Overwrite,
	})
	if err != nil {
		var overlap *merge.OverlapError
		switch {
		case errors.As(err, &overlap):
			flag := map[string]string{"model": "--model", "adapter": "--adapter"}[overlap.Role]
			return usageErrorf("--output %s %s the %s directory %s; merging there could overwrite what merge reads, so choose an --output apart from it", opts.Output, overlap.Relation, flag, overlap.Input)
		case errors.Is(err, merge.ErrOutputNotEmpty):
			return usageErrorf("--output: %v (pass --overwrite to replace the files merge writes)", err)
		case errors.Is(err, atomicfile.ErrNotReplaceable):
			return usageErrorf("--output: %v", err)
		case errors.Is(err, atomicfile.ErrBusy):
			return fmt.Errorf("--output: %w", err)
		}
		return err
	}
	if opts.JSON {
		return json.NewEncoder(stdio.Out).Encode(res)
	}
	fmt.Fprintf(stdio.Out, "merged %s adapter into %d of %d tensors; wrote %s (%s, %d file(s), %.1f MB)\n",
		res.Method, res.Merged, res.Tensors, res.Output, strings.ToLower(string(res.DType)), len(res.Files), float64(res.TotalSize)/1e6)
	return nil
}
