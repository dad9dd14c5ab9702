// Package cli wires the bidora command line: one file per command, an options
// struct per command, and I/O injected through IO so that commands are testable.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// IO carries the streams a command reads and writes. Tests pass buffers.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// IsTerminal reports whether Err is an interactive terminal (progress bars).
	IsTerminal bool
}

// StdIO returns the process's standard streams.
func StdIO() *IO {
	fi, err := os.Stderr.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return &IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, IsTerminal: tty}
}

// UsageError is a bad flag, config key or argument. It makes the process exit 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// usageErrorf builds a UsageError.
func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Exit codes of the command-line contract (README, "Commands").
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// NewRootCmd builds the command tree. Each command lives in its own file.
func NewRootCmd(stdio *IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "bidora",
		Short: "Fine-tune open LLMs with LoRA, rsLoRA, DoRA and BiDoRA adapters",
		Long: `bidora fine-tunes decoder-only LLMs (Llama, Qwen2/2.5, Mistral; HuggingFace format)
with parameter-efficient adapters on a frozen base held unquantised (bf16/f32), in
weight-only INT8 (per-row absmax; not bitsandbytes' LLM.int8) or in 4-bit NF4.
It writes PEFT adapters and merged safetensors models. One binary, no Python.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.AddCommand(
		newVersionCmd(stdio),
		newQuickstartCmd(stdio),
		newTokenizeCmd(stdio),
		newTrainCmd(stdio),
		newInfoCmd(stdio),
		newListModelsCmd(stdio),
		newEvalCmd(stdio),
		newBenchCmd(stdio),
		newMergeCmd(stdio),
		newExportCmd(stdio),
		newGenerateCmd(stdio),
	)
	initCompletionCmd(root)
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	}
	return root
}

// completionShells are the shells cobra's completion command writes scripts for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// initCompletionCmd adds cobra's completion command now (cobra would add it at
// Execute) so that a missing or unknown shell is a usage error (exit 2) listing
// the supported shells instead of the help text with exit 0.
func initCompletionCmd(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			supported := strings.Join(completionShells, ", ")
			if len(args) == 0 {
				return usageErrorf("%s: name a shell: %s", cmd.CommandPath(), supported)
			}
			return usageErrorf("%s: unknown shell %q; supported shells: %s", cmd.CommandPath(), args[0], supported)
		}
	}
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdio *IO) int {
	// os.Interrupt is Ctrl-C (and Ctrl-Break on Windows); SIGTERM is kill(1) on
	// Unix and, on Windows, the console being closed, a logoff or a shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCmd(stdio)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stdio.Err, "bidora: %v\n", err)
	var ue *UsageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		return ExitUsage
	}
	return ExitError
}

// isCobraUsageError recognises cobra's own argument errors (unknown command, wrong arg count).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
