package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/internal/examples"
	"github.com/bidora/bidora/internal/tinymodel"
)

type quickstartOptions struct {
	Dir    string
	Model  string
	Epochs int
	Method string
	// TrainDir trains on a source tree's Go files instead of the example rows.
	TrainDir string
}

// quickstartMarker marks a directory quickstart made, so a second run may reuse it.
const quickstartMarker = ".bidora-quickstart"

func newQuickstartCmd(stdio *IO) *cobra.Command {
	opts := &quickstartOptions{}
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Train a LoRA adapter on a tiny built-in model and example data, offline",
		Long: `quickstart shows the whole training path on this machine without downloading anything:
it writes a tiny randomly initialised Llama-style model (byte-level BPE tokenizer, ~1M
parameters) and a few dozen rows of OpenSCAD, Blender Python and Rust examples into --dir,
trains a LoRA adapter on them, and prints where the adapter is and the validation loss
before and after. The model knows nothing: the falling loss shows the adapter learning the
examples, not a useful model. Pass --model with a real model directory (for instance
../shared/models/code14m) to fine-tune that instead.

--train-dir DIR trains on the Go files of a source tree instead (as git sees it, tests
left out; for instance a checkout of bidora itself), for 30 steps on 256-token
documents, holding out 5% of the files to measure.`,
		Example: `  bidora quickstart
  bidora quickstart --dir /tmp/qs --method dora
  bidora quickstart --model ../shared/models/code14m --epochs 2
  bidora quickstart --train-dir .   # in a bidora checkout: learn its own Go files`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runQuickstart(cmd.Context(), stdio, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "bidora-quickstart", "working directory for the model, data and adapter")
	cmd.Flags().StringVar(&opts.Model, "model", "", "a model directory to fine-tune instead of the tiny built-in one")
	cmd.Flags().IntVar(&opts.Epochs, "epochs", 8, "training epochs")
	cmd.Flags().StringVar(&opts.Method, "method", "lora", "lora or dora")
	cmd.Flags().StringVar(&opts.TrainDir, "train-dir", "", "train on the Go files of this source tree (e.g. a bidora checkout) instead of the example rows")
	return cmd
}

func runQuickstart(ctx context.Context, stdio *IO, opts *quickstartOptions) error {
	if opts.Method != "lora" && opts.Method != "dora" {
		return usageErrorf("--method %q: want lora or dora", opts.Method)
	}
	if opts.Epochs < 1 {
		return usageErrorf("--epochs %d: want ≥ 1", opts.Epochs)
	}
	if entries, err := os.ReadDir(opts.Dir); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(opts.Dir, quickstartMarker)); err != nil {
			return usageErrorf("--dir %s exists and was not made by quickstart; choose another --dir", opts.Dir)
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("--dir %s: %w", opts.Dir, err)
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, quickstartMarker), nil, 0o644); err != nil {
		return fmt.Errorf("--dir %s: %w", opts.Dir, err)
	}
	modelDir := opts.Model
	lr, rank := 5e-3, 16
	if modelDir == "" {
		modelDir = filepath.Join(opts.Dir, "model")
		if err := os.RemoveAll(modelDir); err != nil {
			return err
		}
		if err := tinymodel.Write(modelDir, tinymodel.Options{Arch: "llama", HiddenSize: 128, IntermediateSize: 344,
			NumLayers: 4, NumHeads: 4, NumKVHeads: 2, Tied: true, Seed: 1}); err != nil {
			return fmt.Errorf("writing the tiny model: %w", err)
		}
		fmt.Fprintf(stdio.Err, "quickstart: wrote a tiny random Llama-style model to %s\n", modelDir)
	} else {
		lr, rank = 1e-3, 8
	}
	cfg := config.Default()
	cfg.Model = modelDir
	if opts.TrainDir != "" {
		cfg.TrainDir, cfg.Lang, cfg.Exclude, cfg.ValSplit = []string{opts.TrainDir}, []string{"go"}, []string{"*_test.go"}, 0.05
	} else {
		trainFile, valFile, err := examples.Write(filepath.Join(opts.Dir, "data"))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "quickstart: wrote example data to %s and %s\n", trainFile, valFile)
		cfg.TrainFile, cfg.ValFile = trainFile, valFile
	}
	cfg.Output, cfg.Overwrite = filepath.Join(opts.Dir, "adapter"), true
	cfg.Method, cfg.Rank, cfg.Alpha, cfg.Targets = opts.Method, rank, float64(2*rank), []string{"all-linear"}
	cfg.Epochs, cfg.BatchSize, cfg.GradAccum, cfg.LR = opts.Epochs, 4, 1, lr
	cfg.WarmupSteps, cfg.EvalSteps, cfg.SaveSteps, cfg.MaxSeqLen = 4, 0, 0, 512
	cfg.Quantization, cfg.Dropout = "none", 0
	if opts.TrainDir != "" {
		cfg.MaxSteps, cfg.MaxSeqLen, cfg.EvalSteps = 30, 256, 30
	}
	if err := cfg.Resolve(config.Origins{}); err != nil {
		return err
	}
	if err := os.RemoveAll(cfg.Output); err != nil {
		return err
	}
	header := []string{"bidora quickstart configuration; rerun with: bidora train --config FILE"}
	if err := runTraining(ctx, stdio, cfg, header); err != nil {
		return err
	}
	other := "--train-file your.jsonl"
	if opts.TrainDir != "" {
		other = "--train-dir " + opts.TrainDir + " --fim-rate 0.5"
	}
	fmt.Fprintf(stdio.Out, "next: bidora train --config %s  (or --model Qwen/Qwen2.5-Coder-1.5B-Instruct %s)\n",
		filepath.Join(cfg.Output, "config.yaml"), other)
	return nil
}
