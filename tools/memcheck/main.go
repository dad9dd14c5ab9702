// Command memcheck compares the training-memory estimate (internal/memplan) with the
// peak resident memory that `bidora bench` measures, one run at a time, and prints a
// markdown table: preset, quantisation, batch × sequence, estimate, measured, ratio.
//
//	go build -o /tmp/bidora ./cmd/bidora
//	go run ./tools/memcheck -bidora /tmp/bidora
//
// -only keeps the cases whose label contains a substring; -estimate prints the
// estimates without running anything. -compute is bench's --compute (auto, as
// bench's default, is bf16 on a CPU with native bf16 dot products): the estimate
// charges the bf16-compute scratch for it, with this machine's kernel threads.
// -steps sets bench's timed steps: the bf16-compute scratch grows over the first
// tens of steps (memplan.BF16PooledCopies), so -steps 50 shows a training run's
// steady state.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/bidora/bidora/internal/catalog"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/kernels"
)

type benchCase struct {
	preset string
	quant  memplan.Quant
	method string
	batch  int
	seq    int
	noCkpt bool
}

func (c benchCase) label() string {
	s := fmt.Sprintf("%s %s %s %d×%d", c.preset, quantName(c.quant), c.method, c.batch, c.seq)
	if c.noCkpt {
		s += " no-ckpt"
	}
	return s
}

func quantName(q memplan.Quant) string {
	if q == memplan.QuantNone {
		return "bf16"
	}
	return string(q)
}

// cases are bench's defaults (LoRA r=8 on all-linear, AdamW, checkpointing) unless
// a field says otherwise.
var cases = []benchCase{
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 256},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 512},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 1024},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 2048},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNone, method: "lora", batch: 4, seq: 512},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNF4, method: "lora", batch: 1, seq: 512},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNF4, method: "lora", batch: 1, seq: 2048},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNone, method: "dora", batch: 1, seq: 512},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 512, noCkpt: true},
	{preset: "llama-3.2-1b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 512},
	{preset: "qwen2.5-1.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 1024},
	{preset: "qwen2.5-3b", quant: memplan.QuantNF4, method: "lora", batch: 1, seq: 512},
	// The scaling table of docs/benchmarks.md.
	{preset: "qwen2.5-0.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 4096},
	{preset: "qwen2.5-0.5b", quant: memplan.QuantInt8, method: "lora", batch: 1, seq: 512},
	{preset: "qwen2.5-coder-0.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 512},
	{preset: "qwen2.5-coder-1.5b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 512},
	{preset: "qwen2.5-coder-3b", quant: memplan.QuantNone, method: "lora", batch: 1, seq: 512},
	{preset: "qwen2.5-coder-7b", quant: memplan.QuantNF4, method: "lora", batch: 1, seq: 512},
}

func main() {
	bin := flag.String("bidora", "bidora", "the bidora binary to measure")
	only := flag.String("only", "", "run only the cases whose label contains this")
	estimate := flag.Bool("estimate", false, "print the estimates, run nothing")
	compute := flag.String("compute", "auto", "bench's --compute: auto, bf16 or f32")
	steps := flag.Int("steps", 1, "bench's --steps (timed steps after one warm-up)")
	flag.Parse()
	bf16, err := memplan.BF16ProductsFor(*compute, kernels.NativeBF16())
	if err != nil {
		fmt.Fprintf(os.Stderr, "memcheck: -compute: %v\n", err)
		os.Exit(2)
	}
	if *steps < 1 {
		fmt.Fprintf(os.Stderr, "memcheck: -steps %d: want at least 1\n", *steps)
		os.Exit(2)
	}

	fmt.Println("| preset | weights | method | batch×seq | estimate MiB | measured MiB | estimate/measured |")
	fmt.Println("|---|---|---|---|---:|---:|---:|")
	for _, c := range cases {
		if !strings.Contains(c.label(), *only) {
			continue
		}
		e, ok := catalog.Find(c.preset)
		if !ok {
			fmt.Fprintf(os.Stderr, "memcheck: %s not in the catalog\n", c.preset)
			os.Exit(1)
		}
		est := memplan.Compute(&e.Config, memplan.Settings{Quant: c.quant, Method: c.method, Rank: 8,
			Targets: []string{"all-linear"}, Optimizer: "adamw", BatchSize: c.batch, SeqLen: c.seq,
			GradCheckpointing: !c.noCkpt, BF16: bf16, Threads: kernels.Threads()})
		estMiB := float64(est.Total) / (1 << 20)
		method := c.method
		if c.noCkpt {
			method += " (no checkpointing)"
		}
		row := fmt.Sprintf("| %s | %s | %s | %d×%d | %.0f |", c.preset, quantName(c.quant), method, c.batch, c.seq, estMiB)
		if *estimate {
			fmt.Println(row + " | |")
			continue
		}
		got, err := measure(*bin, c, *compute, *steps)
		if err != nil {
			fmt.Fprintf(os.Stderr, "memcheck: %s: %v\n", c.label(), err)
			os.Exit(1)
		}
		fmt.Printf("%s %.0f | %.2f |\n", row, got, estMiB/got)
	}
}

// measure runs one warm-up and steps timed steps of bench and returns its peak RSS in MiB.
func measure(bin string, c benchCase, compute string, steps int) (float64, error) {
	args := []string{"bench", "--preset", c.preset, "--quantization", string(c.quant), "--method", c.method,
		"--batch-size", strconv.Itoa(c.batch), "--seq-len", strconv.Itoa(c.seq), "--steps", strconv.Itoa(steps),
		"--compute", compute, "--json"}
	if c.noCkpt {
		args = append(args, "--no-grad-checkpointing")
	}
	fmt.Fprintf(os.Stderr, "memcheck: %s %s\n", bin, strings.Join(args, " "))
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return 0, err
	}
	var res struct {
		PeakRSSMB float64 `json:"peak_rss_mb"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return 0, fmt.Errorf("bench output %q: %w", out.String(), err)
	}
	return res.PeakRSSMB, nil
}
