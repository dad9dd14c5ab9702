package kernels

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/cpu"
)

// Expected f32 peak of one core from the instruction mix of the active kernel set:
// FMA pipes × f32 lanes per pipe × 2 FLOPs per FMA. A kernel set wider than the
// core's FMA datapath (AVX-512 on Zen 4's 256-bit pipes) issues at the datapath's
// width, so lanes = min(kernel width, pipe width)/32.
//
// Sources for the pipe counts and widths:
//   - Apple M1–M4 P-cores: four 128-bit FP/SIMD pipes, each with FMA (instruction
//     tables measured on Firestorm by Dougall Johnson; later P-cores keep four).
//   - Arm Neoverse V1 and V2, Cortex-X1..X4: four 128-bit FP/ASIMD pipes with FMA
//     (Arm's software optimization guides for each core).
//   - Arm Neoverse N1 and N2, Cortex-A76/A77/A78/A710: two 128-bit FP/ASIMD pipes.
//   - AMD Zen 1: two 128-bit FMA pipes; Zen 2 and Zen 3: two 256-bit FMA pipes; Zen 4:
//     two 256-bit FMA pipes, AVX-512 double-pumped; Zen 5: two 512-bit FMA pipes on
//     desktop and server parts (the mobile Zen 5 cores double-pump AVX-512 as Zen 4
//     does, which halves the figure). AMD's software optimization guides per family.
//   - Intel cores with AVX2/FMA: two 256-bit FMA ports; with AVX-512: two 512-bit FMA
//     units assumed (some Xeon SKUs have one, which halves the figure).

// Peak describes the expected f32 peak of one core for the active kernel set.
type Peak struct {
	Core          string  // the core as identified, e.g. "AMD Zen 5", "Arm Neoverse N1"
	Impl          string  // the kernel set the figure is for (Impl())
	FLOPsPerCycle float64 // f32 FLOPs per cycle per core; 0 when unknown
	Mix           string  // how: "2 FMA pipes × 16 lanes × 2"
	Note          string  // an assumption the figure rests on, if any
	GHz           float64 // the core clock the OS reports; 0 when it gives none
	ClockSource   string  // where GHz came from
}

// coreFMA is a core's FMA datapath: pipes that can each start one FMA per cycle, and
// their width in bits.
type coreFMA struct {
	name  string
	pipes int
	bits  int
	note  string
}

// armParts maps (implementer, part) from MIDR_EL1 (/proc/cpuinfo "CPU implementer",
// "CPU part") to the core's FMA pipes.
var armParts = map[[2]uint64]coreFMA{
	{0x41, 0xd0b}: {"Arm Cortex-A76", 2, 128, ""},
	{0x41, 0xd0c}: {"Arm Neoverse N1", 2, 128, ""},
	{0x41, 0xd0d}: {"Arm Cortex-A77", 2, 128, ""},
	{0x41, 0xd40}: {"Arm Neoverse V1", 4, 128, ""},
	{0x41, 0xd41}: {"Arm Cortex-A78", 2, 128, ""},
	{0x41, 0xd44}: {"Arm Cortex-X1", 4, 128, ""},
	{0x41, 0xd47}: {"Arm Cortex-A710", 2, 128, ""},
	{0x41, 0xd48}: {"Arm Cortex-X2", 4, 128, ""},
	{0x41, 0xd49}: {"Arm Neoverse N2", 2, 128, ""},
	{0x41, 0xd4e}: {"Arm Cortex-X3", 4, 128, ""},
	{0x41, 0xd4f}: {"Arm Neoverse V2", 4, 128, ""},
	{0x41, 0xd82}: {"Arm Cortex-X4", 4, 128, ""},
}

// PeakFLOPsPerCycle identifies this machine's core (from /proc/cpuinfo on Linux; on
// macOS/arm64 it is taken to be an Apple P-core; elsewhere from CPU features alone) and
// returns its expected f32 peak for the active kernel set, with the clock where the
// OS reports one (Linux).
func PeakFLOPsPerCycle() Peak {
	info, _ := os.ReadFile("/proc/cpuinfo") // absent outside Linux: features decide
	p := peakFor(runtime.GOOS, runtime.GOARCH, string(info), Impl(),
		cpu.X86.HasAVX512F, cpu.X86.HasAVX2 && cpu.X86.HasFMA)
	if b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"); err == nil {
		if khz, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && khz > 0 {
			p.GHz, p.ClockSource = khz/1e6, "cpufreq maximum"
		}
	}
	if p.GHz == 0 {
		if mhz, err := strconv.ParseFloat(cpuinfoField(string(info), "cpu MHz"), 64); err == nil && mhz > 0 {
			p.GHz, p.ClockSource = mhz/1e3, "current clock in /proc/cpuinfo"
		}
	}
	return p
}

// peakFor is PeakFLOPsPerCycle without the clock, on given inputs (for tests).
func peakFor(goos, goarch, cpuinfo, impl string, avx512, avx2 bool) Peak {
	p := Peak{Impl: impl}
	var core coreFMA
	switch goarch {
	case "arm64":
		impl, part := cpuinfoHex(cpuinfo, "CPU implementer"), cpuinfoHex(cpuinfo, "CPU part")
		switch c, ok := armParts[[2]uint64{impl, part}]; {
		case ok:
			core = c
		case goos == "darwin" || goos == "ios" || impl == 0x61: // 0x61: Apple's implementer code
			core = coreFMA{"Apple M-series P-core", 4, 128, "P-core figure; the efficiency cores have fewer FMA pipes"}
		default:
			core = coreFMA{"arm64 core", 2, 128, "unknown core: two 128-bit FMA pipes assumed"}
		}
	case "amd64":
		core = x86Core(cpuinfo, avx512, avx2)
	default:
		p.Core = goarch
		return p
	}
	p.Core, p.Note = core.name, core.note
	width := 32 // bits per FMA lane group of the kernel set: scalar for generic
	switch impl {
	case "avx512":
		width = 512
	case "avx2":
		width = 256
	case "neon":
		width = 128
	}
	lanes := min(width, core.bits) / 32
	p.FLOPsPerCycle = float64(core.pipes * lanes * 2)
	p.Mix = fmt.Sprintf("%d FMA pipes × %d lanes × 2", core.pipes, lanes)
	if impl == "generic" {
		p.Mix = fmt.Sprintf("%d FMA pipes × 1 lane × 2 (plain-Go kernels, scalar)", core.pipes)
	}
	return p
}

// x86Core identifies an x86-64 core from /proc/cpuinfo's vendor and family, or from
// the features alone.
func x86Core(cpuinfo string, avx512, avx2 bool) coreFMA {
	family, _ := strconv.Atoi(cpuinfoField(cpuinfo, "cpu family"))
	if cpuinfoField(cpuinfo, "vendor_id") == "AuthenticAMD" {
		switch {
		case family == 26:
			return coreFMA{"AMD Zen 5", 2, 512, "desktop/server Zen 5; mobile Zen 5 double-pumps AVX-512 (half this)"}
		case family == 25 && avx512:
			return coreFMA{"AMD Zen 4", 2, 256, ""}
		case family == 25:
			return coreFMA{"AMD Zen 3", 2, 256, ""}
		case family == 23:
			model, _ := strconv.Atoi(cpuinfoField(cpuinfo, "model"))
			if model >= 0x30 {
				return coreFMA{"AMD Zen 2", 2, 256, ""}
			}
			return coreFMA{"AMD Zen 1", 2, 128, ""}
		}
	}
	switch {
	case avx512:
		return coreFMA{"x86-64 with AVX-512", 2, 512, "two 512-bit FMA units assumed (some Xeon SKUs have one)"}
	case avx2:
		return coreFMA{"x86-64 with AVX2/FMA", 2, 256, ""}
	}
	return coreFMA{"x86-64 without FMA", 2, 128, "no FMA: counts a multiply and an add pipe as one"}
}

// cpuinfoField returns the value of the first "key : value" line of /proc/cpuinfo.
func cpuinfoField(info, key string) string {
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func cpuinfoHex(info, key string) uint64 {
	v, err := strconv.ParseUint(strings.TrimPrefix(cpuinfoField(info, key), "0x"), 16, 64)
	if err != nil {
		return 0
	}
	return v
}

// PerGHz returns the expected peak of threads cores in GFLOP/s per GHz of clock.
func (p Peak) PerGHz(threads int) float64 { return p.FLOPsPerCycle * float64(max(threads, 1)) }

// Describe returns one line comparing a measured f32 rate (GFLOP/s over threads
// cores) with the expected peak: as a share of it when the clock is known, else as
// the clock the measured rate would need at peak.
func (p Peak) Describe(measured float64, threads int) string {
	if p.FLOPsPerCycle == 0 {
		return fmt.Sprintf("expected peak: unknown for %s", p.Core)
	}
	s := fmt.Sprintf("expected f32 peak: %g FLOP/cycle/core (%s, %s kernels: %s)", p.FLOPsPerCycle, p.Core, p.Impl, p.Mix)
	if p.Note != "" {
		s += " [" + p.Note + "]"
	}
	per := p.PerGHz(threads)
	if p.GHz > 0 {
		peak := per * p.GHz
		return s + fmt.Sprintf(" × %d threads × %.2f GHz (%s) = %.0f GFLOP/s; measured %.1f GFLOP/s = %.0f%%",
			max(threads, 1), p.GHz, p.ClockSource, peak, measured, 100*measured/peak)
	}
	return s + fmt.Sprintf(" × %d threads = %.0f GFLOP/s per GHz (clock unknown); measured %.1f GFLOP/s = peak at %.2f GHz",
		max(threads, 1), per, measured, measured/per)
}
