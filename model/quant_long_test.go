//go:build long && linux

package model

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/quant"
	"github.com/bidora/bidora/safetensors"
)

// procStatusKB reads a kB field of /proc/self/status (VmHWM, VmRSS).
func procStatusKB(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Skipf("no %s in /proc/self/status", field)
	return 0
}

// Loading a bf16 checkpoint with nf4 never holds the bf16 projections and the
// quantised ones at once: the peak resident set grows by about the quantised size
// plus one tensor, not by the bf16 size (the mapped pages of each quantised tensor
// are released as soon as it is quantised).
func TestLoadQuantizedPeakRSS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	if err := tinymodel.Write(dir, tinymodel.Options{Arch: "llama", HiddenSize: 1024, IntermediateSize: 2816, NumLayers: 8,
		NumHeads: 16, NumKVHeads: 4, DType: safetensors.BF16, Tied: true, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	fileMB := float64(fi.Size()) / (1 << 20)
	load := func(kind quant.Kind, release bool) (peakMB, weightsMB float64) {
		releaseEnabled = release
		defer func() { releaseEnabled = true }()
		// Return freed heap to the OS and reset the high-water mark (Linux ≥ 4.0).
		debug.FreeOSMemory()
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			t.Skipf("cannot reset VmHWM: %v", err)
		}
		before := procStatusKB(t, "VmHWM")
		m, err := Load(dir, Options{Quant: kind})
		if err != nil {
			t.Fatal(err)
		}
		peakMB = float64(procStatusKB(t, "VmHWM")-before) / 1024
		weightsMB = float64(m.WeightBytes()) / (1 << 20)
		m.Close()
		return peakMB, weightsMB
	}
	for _, kind := range []quant.Kind{quant.KindNF4, quant.KindInt8} {
		peak, weights := load(kind, true)
		kept, _ := load(kind, false)
		t.Logf("%s: file %.0f MB (bf16), quantised weights %.0f MB; peak RSS growth while loading %.0f MB (%.0f MB if the mapped pages were kept)",
			kind, fileMB, weights, peak, kept)
		if peak > weights+0.25*fileMB {
			t.Errorf("%s: peak RSS grew by %.0f MB loading a %.0f MB bf16 file into %.0f MB of weights", kind, peak, fileMB, weights)
		}
		if kept < weights+0.75*fileMB {
			t.Errorf("%s: without releasing pages the peak grew by only %.0f MB: the measurement does not see mapped pages", kind, kept)
		}
	}
}
