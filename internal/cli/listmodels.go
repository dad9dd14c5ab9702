package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/internal/catalog"
	"github.com/bidora/bidora/internal/memplan"
)

type listModelsOptions struct {
	JSON bool
}

func newListModelsCmd(stdio *IO) *cobra.Command {
	opts := &listModelsOptions{}
	cmd := &cobra.Command{
		Use:   "list-models",
		Short: "List recommended base models with their size and memory needs",
		Long: `List the base models bidora recommends, with architecture, parameter count, context
length and the estimated training memory (GiB) with NF4, INT8 and BF16 base weights at the
default settings (LoRA r=8 on q,k,v,o; batch 4; max-seq-len 2048; gradient checkpointing).
The last column says whether the model fits this machine and with which settings
auto-adjust would run it ("none": not quantised).
The PRESET names work wherever a model is expected (--model, bench --preset).

` + quantLegend,
		Example: `  bidora list-models
  bidora list-models --json | jq -r '.[] | select(.fits) | .id'
  bidora train --model qwen2.5-coder-1.5b --train-file data.jsonl --print-config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runListModels(cmd.Context(), stdio, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

type modelRow struct {
	ID            string           `json:"id"`
	Preset        string           `json:"preset,omitempty"`
	Family        string           `json:"family"`
	Architecture  string           `json:"architecture"`
	Params        int64            `json:"params"`
	ContextLength int              `json:"context_length"`
	Layers        int              `json:"layers"`
	HiddenSize    int              `json:"hidden_size"`
	MemoryBytes   map[string]int64 `json:"memory_bytes"`
	Fits          bool             `json:"fits"`
	Plan          *memplan.Plan    `json:"plan"`
}

func runListModels(ctx context.Context, stdio *IO, opts *listModelsOptions) error {
	machine := machineOf(detectHardware(ctx, ""))
	defaults := config.Default()
	var rows []modelRow
	for _, e := range catalog.Entries() {
		req := planRequest(defaults, config.Origins{})
		mem := map[string]int64{}
		for _, q := range []memplan.Quant{memplan.QuantNF4, memplan.QuantInt8, memplan.QuantNone} {
			s := req.Settings
			s.Quant = q
			key := string(q)
			if q == memplan.QuantNone {
				key = "bf16"
			}
			mem[key] = memplan.Compute(&e.Config, s).Total
		}
		plan := memplan.AutoAdjust(&e.Config, req, machine)
		rows = append(rows, modelRow{ID: e.ID, Preset: e.Preset, Family: e.Family, Architecture: e.Config.ModelType,
			Params: e.Params(), ContextLength: e.ContextLength, Layers: e.Config.NumHiddenLayers,
			HiddenSize: e.Config.HiddenSize, MemoryBytes: mem, Fits: plan.Fits, Plan: &plan})
	}
	if opts.JSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	w := tabwriter.NewWriter(stdio.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "MODEL\tPRESET\tARCH\tPARAMS\tCONTEXT\tNF4\tINT8\tBF16\tFITS HERE (auto-adjust)")
	for _, r := range rows {
		fits := "no"
		if r.Fits {
			fits = fmt.Sprintf("yes: %s, batch %d", r.Plan.Quant, r.Plan.BatchSize)
			if r.Plan.SeqLen != defaults.MaxSeqLen {
				fits += fmt.Sprintf(", seq %d", r.Plan.SeqLen)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%dK\t%s\t%s\t%s\t%s\n", r.ID, r.Preset, r.Architecture, formatParams(r.Params),
			r.ContextLength/1024, gib(r.MemoryBytes["nf4"]), gib(r.MemoryBytes["int8"]), gib(r.MemoryBytes["bf16"]), fits)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "\nMemory: estimated training peak at the defaults (LoRA r=8 q,k,v,o, batch 4, max-seq-len 2048).\n"+
		"Fits here: within %.0f%% of %s usable RAM (\"none\": not quantised).\n%s\n",
		memplan.BudgetFraction*100, memplan.FormatBytes(machine.RAMBytes), quantLegend)
	return nil
}

// quantLegend says what the NF4, INT8 and BF16 columns hold.
const quantLegend = `NF4:  the projections in bitsandbytes' 4-bit NormalFloat layout (blocks of 64,
      double-quantised scales), as QLoRA.
INT8: weight-only int8, one absmax scale per output row (max|row|/127); activations
      stay f32. Not bitsandbytes' LLM.int8 (no int8 matmul, no outlier decomposition).
BF16: the projections in bf16. Embeddings, LM head and norms are never quantised.`

func gib(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }
