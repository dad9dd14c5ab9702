package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/quant"
	"github.com/bidora/bidora/safetensors"
)

// quantUsage is the help text of --quantization on eval and bench.
const quantUsage = "frozen projection weights: auto (chosen from memory), nf4 (4-bit NormalFloat, QLoRA), int8 (weight-only, per-row absmax; not LLM.int8) or none (not quantised)"

// baseDTypeUsage is the help text of --base-dtype on eval and generate (train's is
// in package config).
const baseDTypeUsage = "frozen weights that are not quantised (embeddings, LM head; the projections with --quantization none): auto (as stored: f32 stays f32, bf16 stays bf16, f16 becomes bf16), bf16 (half the memory of f32) or f32 (exact)"

// parseBaseDTypeFlag checks a --base-dtype value.
func parseBaseDTypeFlag(s string) (model.BaseDType, error) {
	d, err := model.ParseBaseDType(s)
	if err != nil {
		return "", usageErrorf("--base-dtype %s: must be one of %s", s, strings.Join(model.BaseDTypes, ", "))
	}
	return d, nil
}

// storedDType is the dtype the checkpoint in dir stores its weight matrices in: read
// from its safetensors headers, or, where dir has none (a catalog preset, weights
// not downloaded yet), guessed from config.json's torch_dtype (mc may be nil); ""
// when neither says.
func storedDType(dir string, mc *modelcfg.Config) safetensors.DType {
	if dir != "" {
		if dt, err := model.CheckpointDType(dir); err == nil && dt != "" {
			return dt
		}
	}
	if mc != nil {
		switch strings.ToLower(mc.TorchDtype) {
		case "float32":
			return safetensors.F32
		case "bfloat16":
			return safetensors.BF16
		case "float16":
			return safetensors.F16
		case "float64":
			return safetensors.F64
		}
	}
	return ""
}

// resolveBaseDType turns --base-dtype into the dtype the frozen weights that are not
// quantised are held in for the checkpoint in dir (see storedDType): bf16 and f32
// are kept; auto is the stored dtype where a kernel exists (f32 stays f32, bf16
// stays bf16), f16 and unknown dtypes become bf16. stored is what was read.
func resolveBaseDType(d model.BaseDType, dir string, mc *modelcfg.Config) (held model.BaseDType, stored safetensors.DType) {
	stored = storedDType(dir, mc)
	return d.Held(stored), stored
}

// resolveConfigBaseDType resolves cfg.BaseDType (auto → as stored) for a model whose
// shape is known before loading (a local directory, read from its headers, or a
// catalog preset, from its torch_dtype), so that auto-adjust plans for the bytes the
// run will hold and --print-config shows the dtype; it returns a line for the
// --print-config header when auto was resolved. A model only the hub knows keeps
// auto, resolved when it is loaded.
func resolveConfigBaseDType(cfg *config.Train, mc *modelcfg.Config) []string {
	d, err := model.ParseBaseDType(cfg.BaseDType)
	if err != nil || d != model.BaseAuto {
		return nil // validated by config.Resolve; bf16 and f32 stay
	}
	dir := ""
	if fi, err := os.Stat(cfg.Model); err == nil && fi.IsDir() {
		dir = cfg.Model
	}
	held, stored := resolveBaseDType(d, dir, mc)
	cfg.BaseDType = string(held)
	from := "dtype unknown"
	if stored != "" {
		from = "stored as " + strings.ToLower(string(stored))
	}
	return []string{fmt.Sprintf("base-dtype: auto → %s (the checkpoint's weights: %s)", held, from)}
}

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

// loadQuantModel loads a model directory with its projections held as kind and the
// other frozen weights as opts.BaseDType (--base-dtype: "" or auto is as stored,
// resolved here from the checkpoint's headers), and says on w how the weights are
// held: once when an f16 checkpoint is held in bf16, and when the checkpoint was
// saved by bitsandbytes in 4-bit form (used as stored, whatever kind asked for).
func loadQuantModel(w io.Writer, dir string, kind quant.Kind, opts model.Options) (*model.Model, error) {
	opts.Quant = kind
	if opts.F32Weights {
		opts.BaseDType = model.BaseF32
	}
	held, stored := resolveBaseDType(opts.BaseDType, dir, nil)
	opts.BaseDType = held
	m, err := model.Load(dir, opts)
	if err != nil {
		return nil, err
	}
	if stored == safetensors.F16 && m.BaseDType() == model.BaseBF16 {
		fmt.Fprintln(w, "weights: the checkpoint stores f16, which bidora has no kernels for: the frozen weights are held in bf16 (the same memory; f16's 10-bit mantissa rounded to 7 bits); --base-dtype f32 keeps the f16 values exactly at twice the memory")
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
