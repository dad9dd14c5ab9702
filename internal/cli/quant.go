package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/quant"
)

// quantUsage is the help text of --quantization on eval and bench.
const quantUsage = "frozen projection weights: auto (chosen from memory), nf4 (4-bit NormalFloat, QLoRA), int8 (weight-only, per-row absmax; not LLM.int8) or none (not quantised)"

// parseQuantFlag checks a --quantization value; "auto" is returned as "auto" for
// resolveAutoQuant.
func parseQuantFlag(s string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		return "auto", nil
	}
	k, err := quant.ParseKind(s)
	if err != nil {
		return "", usageErrorf("--quantization %s: must be one of auto, nf4, int8, none", s)
	}
	return string(k), nil
}

// resolveAutoQuant turns --quantization into a storage format: "auto" asks memplan's
// auto-adjust which quantisation this machine's memory calls for with settings s (it
// logs its reason to w); anything else is already a format.
func resolveAutoQuant(ctx context.Context, w io.Writer, q string, mc *modelcfg.Config, s memplan.Settings, diskDir string) quant.Kind {
	if q != "auto" {
		return quant.Kind(q)
	}
	s.Quant = memplan.QuantAuto
	plan := memplan.AutoAdjust(mc, memplan.Request{Settings: s, GradAccum: 1,
		Fixed: memplan.Fixed{BatchSize: true, GradAccum: true, SeqLen: true}}, machineOf(detectHardware(ctx, diskDir)))
	for _, r := range plan.Reasons {
		if strings.HasPrefix(r, "quantization ") {
			fmt.Fprintf(w, "--quantization auto: %s\n", r)
		}
	}
	return quant.Kind(plan.Quant)
}

// loadQuantModel loads a model directory with its projections held as kind and says
// on w how the weights are held, in particular when the checkpoint was saved by
// bitsandbytes in 4-bit form (used as stored, whatever kind asked for).
func loadQuantModel(w io.Writer, dir string, kind quant.Kind, opts model.Options) (*model.Model, error) {
	opts.Quant = kind
	m, err := model.Load(dir, opts)
	if err != nil {
		return nil, err
	}
	reportWeights(w, m, kind)
	return m, nil
}

// reportWeights prints one line about the frozen weights of m, loaded for kind.
func reportWeights(w io.Writer, m *model.Model, kind quant.Kind) {
	size := memplan.FormatBytes(m.WeightBytes())
	switch {
	case m.PreQuantized() && kind != quant.KindNF4:
		fmt.Fprintf(w, "bidora: note: the checkpoint holds bitsandbytes 4-bit (NF4) weights: they are used as stored, not as --quantization %s (frozen weights %s)\n", quantName(kind), size)
	case m.PreQuantized():
		fmt.Fprintf(w, "weights: bitsandbytes 4-bit (NF4) checkpoint, used as stored (frozen weights %s)\n", size)
	case m.Quantization() != quant.KindNone:
		fmt.Fprintf(w, "weights: projections quantised to %s while loading (frozen weights %s)\n", m.Quantization(), size)
	}
}

func quantName(k quant.Kind) quant.Kind {
	if k == "" {
		return quant.KindNone
	}
	return k
}
