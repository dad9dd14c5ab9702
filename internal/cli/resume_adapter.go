package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/peft"
)

// applyResumeAdapter makes the adapter settings of cfg those of the --resume-adapter
// directory's adapter_config.json (rank, alpha, targets, rsLoRA, DoRA), as the README
// says. A flag or YAML key that was given explicitly and contradicts the adapter is a
// usage error naming it. The directory may be a hub repo id; it is resolved to a local
// path in cfg.
func applyResumeAdapter(ctx context.Context, stdio *IO, cfg *config.Train, o config.Origins) error {
	dir, err := resolveModelDir(ctx, stdio, "--resume-adapter", cfg.ResumeAdapter)
	if err != nil {
		return err
	}
	pc, err := peft.ReadConfig(dir)
	if err != nil {
		return usageErrorf("--resume-adapter %s: %w", cfg.ResumeAdapter, err)
	}
	targets := normTargets(pc.TargetModules)
	method := "lora"
	if pc.UseDora {
		method = "dora"
		if cfg.Method == "bidora" {
			method = "bidora"
		}
	}
	var clash []string
	check := func(name string, explicit bool, same bool, want any) {
		if explicit && !same {
			clash = append(clash, fmt.Sprintf("%s (the adapter has %v)", o.Where(name), want))
		}
	}
	check("rank", o.Explicit("rank"), cfg.Rank == pc.R, pc.R)
	check("alpha", o.Explicit("alpha"), cfg.Alpha == pc.LoraAlpha, pc.LoraAlpha)
	check("targets", o.Explicit("targets"), slices.Equal(normTargets(cfg.Targets), targets), strings.Join(targets, ","))
	check("rslora", o.Explicit("rslora"), cfg.RSLoRA == pc.UseRslora, pc.UseRslora)
	check("method", o.Explicit("method") || o.Explicit(config.DoraFlag), cfg.Method == method || (cfg.Method == "bidora" && pc.UseDora), method)
	if len(clash) > 0 {
		return usageErrorf("--resume-adapter %s sets the adapter's shape; these settings contradict it: %s", cfg.ResumeAdapter, strings.Join(clash, "; "))
	}
	cfg.ResumeAdapter = dir
	cfg.Rank, cfg.Alpha, cfg.Targets, cfg.RSLoRA = pc.R, pc.LoraAlpha, targets, pc.UseRslora
	if cfg.Method != "bidora" {
		cfg.Method = method
	}
	return nil
}

// normTargets expands all-linear and sorts, so target lists compare as sets.
func normTargets(t []string) []string {
	var out []string
	for _, x := range t {
		if x == "all-linear" {
			out = append(out, modelcfg.Projections...)
		} else {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
