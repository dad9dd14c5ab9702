package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/internal/hardware"
	"github.com/bidora/bidora/internal/memplan"
)

type infoOptions struct {
	JSON   bool
	Model  string
	Output string
}

func newInfoCmd(stdio *IO) *cobra.Command {
	opts := &infoOptions{}
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show the hardware and the settings auto-adjust would pick",
		Long: `Report the CPU (model, cores, SIMD features), RAM and container memory limit, free disk
space at the output directory and NVIDIA GPUs, then the quantization, batch size, grad-accum
and max-seq-len that 'bidora train' would choose for a model with its default settings, and why.`,
		Example: `  bidora info
  bidora info --model qwen2.5-coder-1.5b
  bidora info --json | jq .recommendation.quantization`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInfo(cmd.Context(), stdio, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	cmd.Flags().StringVar(&opts.Model, "model", config.DefaultModel, "model to recommend settings for: catalog preset, HF id or local directory")
	cmd.Flags().StringVar(&opts.Output, "output", "./output", "directory whose free disk space to report")
	return cmd
}

type recommendation struct {
	Model  string `json:"model"`
	Params int64  `json:"params,omitempty"`
	*memplan.Plan
	Note string `json:"note,omitempty"`
}

func runInfo(ctx context.Context, stdio *IO, opts *infoOptions) error {
	info := detectHardware(ctx, opts.Output)
	rec := recommendation{Model: opts.Model}
	mc, about, err := lookupModel(opts.Model)
	if err != nil {
		return err
	}
	if mc != nil {
		cfg := config.Default()
		plan := memplan.AutoAdjust(mc, planRequest(cfg, config.Origins{}), machineOf(info))
		rec.Plan, rec.Params = &plan, mc.NumParams()
	} else {
		rec.Note = strings.Join(about, "; ")
	}
	if opts.JSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Hardware       hardware.Info  `json:"hardware"`
			Recommendation recommendation `json:"recommendation"`
		}{info, rec})
	}
	w := tabwriter.NewWriter(stdio.Out, 0, 0, 2, ' ', 0)
	c := info.CPU
	fmt.Fprintf(w, "CPU\t%s\n", orUnknown(c.Model))
	fmt.Fprintf(w, "Cores\t%d physical, %d threads, %d usable by bidora\n", c.Cores, c.Threads, c.Usable)
	fmt.Fprintf(w, "SIMD\t%s\n", orNone(strings.Join(c.Features, " ")))
	m := info.Memory
	fmt.Fprintf(w, "RAM\t%s total, %s available\n", memplan.FormatBytes(m.Total), memplan.FormatBytes(m.Available))
	if m.CgroupLimit > 0 {
		fmt.Fprintf(w, "Container\tmemory limit %s, %s in use\n", memplan.FormatBytes(m.CgroupLimit), memplan.FormatBytes(m.CgroupUsage))
	}
	if d := info.Disk; d != nil {
		fmt.Fprintf(w, "Disk\t%s free of %s at %s\n", memplan.FormatBytes(d.Free), memplan.FormatBytes(d.Total), d.Path)
	}
	if len(info.GPUs) == 0 {
		fmt.Fprintf(w, "GPU\tnone found (nvidia-smi)\n")
	}
	for i, g := range info.GPUs {
		fmt.Fprintf(w, "GPU %d\t%s, %s, driver %s (no GPU backend yet: training runs on the CPU)\n", i, g.Name, memplan.FormatBytes(g.MemoryBytes), g.Driver)
	}
	fmt.Fprintf(w, "OS\t%s/%s\n", info.OS, info.Arch)
	for _, warn := range info.Warnings {
		fmt.Fprintf(w, "Warning\t%s\n", warn)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out)
	if rec.Plan == nil {
		fmt.Fprintf(stdio.Out, "No recommendation: %s\n", rec.Note)
		return nil
	}
	p := rec.Plan
	fmt.Fprintf(stdio.Out, "Recommended for %s (%s parameters, default settings):\n", rec.Model, formatParams(rec.Params))
	w = tabwriter.NewWriter(stdio.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "  --quantization\t%s\n", p.Quant)
	fmt.Fprintf(w, "  --batch-size\t%d\n", p.BatchSize)
	fmt.Fprintf(w, "  --grad-accum\t%d\n", p.GradAccum)
	fmt.Fprintf(w, "  --max-seq-len\t%d\n", p.SeqLen)
	fmt.Fprintf(w, "  memory\t%s\n", p.Estimate)
	fmt.Fprintf(w, "  fits\t%v\n", yesNo(p.Fits))
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, "Why:")
	for _, r := range p.Reasons {
		fmt.Fprintf(stdio.Out, "  - %s\n", r)
	}
	fmt.Fprintf(stdio.Out, "Method: %s\n", methodAdvice)
	return nil
}

// methodAdvice is which --method to pick, as docs/bidora.md's three-seed runs found.
const methodAdvice = "lora (the default) or dora (consistently a little better, similar cost); " +
	"bidora only for a small data set trained for many epochs where the adapter overfits, " +
	"with --hypergrad first-order: it costs 2x the steps and 2.5-4x DoRA's time, and DoRA with fewer epochs did as well in our runs"

func orNone(s string) string {
	if s == "" {
		return "none detected"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
