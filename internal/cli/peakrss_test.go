package cli

import (
	"runtime"
	"testing"
)

// ru_maxrss counts kibibytes on Linux and bytes on macOS: 3 GiB either way.
func TestRusageMaxRSSUnits(t *testing.T) {
	for _, c := range []struct {
		goos   string
		maxrss int64
	}{{"linux", 3 << 20}, {"freebsd", 3 << 20}, {"darwin", 3 << 30}, {"ios", 3 << 30}} {
		if got := rusageMaxRSSMB(c.maxrss, c.goos); got != 3<<10 {
			t.Errorf("%s: ru_maxrss %d = %v MiB, want %d", c.goos, c.maxrss, got, 3<<10)
		}
	}
}

func TestPeakRSSMB(t *testing.T) {
	switch runtime.GOOS {
	case "linux", "darwin", "windows", "freebsd":
	default:
		t.Skip("no peak resident set on " + runtime.GOOS)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	// This process has touched at least the 64 MiB above; a peak in bytes
	// read as kibibytes (or the reverse) would be off by 1024.
	if got := peakRSSMB(); got < 64 || got > 1<<20 {
		t.Fatalf("peak RSS %v MiB, want at least 64 and below 1 TiB", got)
	}
	runtime.KeepAlive(buf)
}
