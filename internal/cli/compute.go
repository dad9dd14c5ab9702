package cli

import (
	"fmt"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/model"
)

// parseComputeFlag checks a --compute value.
func parseComputeFlag(s string) (model.Compute, error) {
	c := model.Compute(s)
	if _, err := c.Resolve(); err != nil || s == "" {
		return "", usageErrorf("--compute must be auto, bf16 or f32, got %q", s)
	}
	return c, nil
}

// computeAbout is the --print-config header line saying what --compute resolves to
// on this machine.
func computeAbout(s string) string {
	c, err := model.Compute(s).Resolve()
	if err != nil {
		return ""
	}
	why := "the CPU has no native bf16 dot products"
	if kernels.NativeBF16() {
		why = "the CPU has native bf16 dot products, AVX512_BF16"
	}
	if s == string(model.ComputeAuto) {
		return fmt.Sprintf("compute: auto → %s (%s)", c, why)
	}
	if c == model.ComputeBF16 && !kernels.NativeBF16() {
		return "compute: bf16 on the plain-Go kernels (" + why + "): much slower than f32 here"
	}
	return "compute: " + string(c)
}
