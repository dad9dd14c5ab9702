package cli

import (
	"context"

	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/modelcfg"
)

// plannedKeptBudget is the kept-activation budget (model.Options.KeptActivationsBudget)
// for a training run with settings s on this machine: the one auto-adjust chose and
// --print-config showed (memplan.Plan.KeptBudget), from the memory the run leaves
// free. Without the model's shape it is 0, the model's default.
func plannedKeptBudget(ctx context.Context, mc *modelcfg.Config, s memplan.Settings, diskDir string) int64 {
	if mc == nil {
		return 0
	}
	return memplan.AutoAdjust(mc, memplan.Request{Settings: s, GradAccum: 1,
		Fixed: memplan.Fixed{BatchSize: true, GradAccum: true, SeqLen: true}}, machineOf(detectHardware(ctx, diskDir))).KeptBudget
}

// withCompute returns s with the products that --compute mode runs in bf16 on this
// CPU and the kernel threads, so that the estimate charges the bf16-compute scratch.
// A mode config validation would reject counts as f32.
func withCompute(s memplan.Settings, mode string) memplan.Settings {
	s.BF16, _ = memplan.BF16ProductsFor(mode, kernels.NativeBF16())
	s.Threads = kernels.Threads()
	return s
}
