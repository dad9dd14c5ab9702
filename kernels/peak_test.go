package kernels

import (
	"strings"
	"testing"
)

func TestPeakFor(t *testing.T) {
	const zen5 = "vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\ncpu MHz\t\t: 2694.874\n"
	const zen4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
	const n1 = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd0c\n"
	const v1 = "CPU implementer\t: 0x41\nCPU part\t: 0xd40\n"
	for _, c := range []struct {
		goos, goarch, info, impl string
		avx512, avx2             bool
		core                     string
		flops                    float64
	}{
		{"linux", "amd64", zen5, "avx512", true, true, "AMD Zen 5", 64},
		{"linux", "amd64", zen5, "avx2", true, true, "AMD Zen 5", 32},
		{"linux", "amd64", zen5, "generic", true, true, "AMD Zen 5", 4},
		{"linux", "amd64", zen4, "avx512", true, true, "AMD Zen 4", 32},
		{"windows", "amd64", "", "avx2", false, true, "x86-64 with AVX2/FMA", 32},
		{"linux", "arm64", n1, "neon", false, false, "Arm Neoverse N1", 16},
		{"linux", "arm64", v1, "neon", false, false, "Arm Neoverse V1", 32},
		{"darwin", "arm64", "", "neon", false, false, "Apple M-series P-core", 32},
		{"linux", "arm64", "", "neon", false, false, "arm64 core", 16},
	} {
		p := peakFor(c.goos, c.goarch, c.info, c.impl, c.avx512, c.avx2)
		if p.Core != c.core || p.FLOPsPerCycle != c.flops {
			t.Errorf("%s/%s %s: %q %g FLOP/cycle, want %q %g", c.goos, c.goarch, c.impl, p.Core, p.FLOPsPerCycle, c.core, c.flops)
		}
	}
}

func TestPeakDescribe(t *testing.T) {
	p := Peak{Core: "Arm Neoverse N1", Impl: "neon", FLOPsPerCycle: 16, Mix: "2 FMA pipes × 4 lanes × 2"}
	if s := p.Describe(64, 4); !strings.Contains(s, "64 GFLOP/s per GHz") || !strings.Contains(s, "peak at 1.00 GHz") {
		t.Errorf("no clock: %s", s)
	}
	p.GHz, p.ClockSource = 2, "test"
	if s := p.Describe(64, 4); !strings.Contains(s, "= 128 GFLOP/s") || !strings.Contains(s, "= 50%") {
		t.Errorf("with clock: %s", s)
	}
	if s := PeakFLOPsPerCycle().Describe(1, 1); s == "" {
		t.Error("empty description for this machine")
	}
}
