package progress

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for deterministic output.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestLogLines(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	r := NewWithOptions(&buf, false, Options{Interval: 10 * time.Second, Now: clk.Now})
	b := r.Start("model.safetensors", 100_000_000, Bytes)
	clk.Advance(5 * time.Second)
	b.Add(10_000_000) // before the interval: no line
	if buf.Len() != 0 {
		t.Fatalf("logged before the interval: %q", buf.String())
	}
	clk.Advance(5 * time.Second)
	b.Add(10_000_000)
	clk.Advance(10 * time.Second)
	b.Set("loss", "1.234")
	b.Add(20_000_000)
	b.Finish()
	b.Finish() // second call does nothing
	want := []string{
		"model.safetensors: 20% 20.0 MB/100 MB 2.00 MB/s ETA 40s",
		"model.safetensors: 40% 40.0 MB/100 MB 2.00 MB/s ETA 30s loss=1.234",
		"model.safetensors: 40% 40.0 MB/100 MB 2.00 MB/s in 20s loss=1.234",
	}
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSkipNotInRate(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	r := NewWithOptions(&buf, false, Options{Interval: time.Second, Now: clk.Now})
	b := r.Start("steps", 10, "steps")
	b.Skip(5) // resumed: 5 steps done before
	clk.Advance(2 * time.Second)
	b.Add(1)
	if got, want := strings.TrimSpace(buf.String()), "steps: 60% 6/10 steps 0.50 steps/s ETA 8s"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTerminalBlock(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	r := NewWithOptions(&buf, true, Options{Refresh: 100 * time.Millisecond, Width: 80, Now: clk.Now})
	a := r.Start("a", 4, "")
	r.Start("b", 0, "files")
	buf.Reset()
	clk.Advance(time.Second)
	a.Add(1)
	out := buf.String()
	// The block of two lines is redrawn in place: cursor up 2, clear, two lines.
	if !strings.HasPrefix(out, "\x1b[2A\r\x1b[J") {
		t.Fatalf("no in-place redraw: %q", out)
	}
	lines := strings.Split(strings.TrimPrefix(out, "\x1b[2A\r\x1b[J"), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("want two lines, got %q", lines)
	}
	if want := "a  25% |"; !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], "| 1/4 1.00 it/s ETA 3s") {
		t.Errorf("line a = %q", lines[0])
	}
	if lines[1] != "b 0 files" {
		t.Errorf("line b = %q", lines[1])
	}
	// Throttled: an update within Refresh draws nothing.
	buf.Reset()
	a.Add(1)
	if buf.Len() != 0 {
		t.Fatalf("redrawn within the refresh interval: %q", buf.String())
	}
	// Finish prints a permanent line, the block shrinks to one bar.
	a.Finish()
	out = buf.String()
	rest := strings.TrimPrefix(out, "\x1b[2A\r\x1b[J")
	lines = strings.Split(rest, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "a  50% |") || lines[1] != "b 0 files" {
		t.Fatalf("after finish: %q", out)
	}
	r.Println("eval loss 1.5")
	if !strings.HasSuffix(buf.String(), "\x1b[1A\r\x1b[Jeval loss 1.5\nb 0 files\n") {
		t.Fatalf("Println: %q", buf.String())
	}
	for _, l := range strings.Split(buf.String(), "\n") {
		if n := len([]rune(strings.TrimPrefix(l, "\x1b[2A\r\x1b[J"))); n > 80+8 {
			t.Errorf("line longer than the width: %q", l)
		}
	}
}

func TestWidthCut(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	r := NewWithOptions(&buf, true, Options{Width: 40, Now: clk.Now})
	b := r.Start(strings.Repeat("x", 60), 10, "")
	b.Finish()
	for _, l := range strings.Split(buf.String(), "\n") {
		l = strings.TrimPrefix(l, "\x1b[1A")
		l = strings.TrimPrefix(l, "\r\x1b[J")
		if n := len([]rune(l)); n > 40 {
			t.Errorf("line of %d runes > width 40: %q", n, l)
		}
	}
}

func TestConcurrent(t *testing.T) {
	var buf bytes.Buffer
	r := NewWithOptions(&buf, true, Options{Refresh: time.Nanosecond})
	total := r.Start("total", 8*1000, Bytes)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := r.Start(fmt.Sprintf("shard %d", i), 1000, Bytes)
			for range 100 {
				own.Add(10)
				total.Add(10)
			}
			own.Finish()
		}()
	}
	wg.Wait()
	if got := total.Current(); got != 8000 {
		t.Fatalf("total = %d, want 8000", got)
	}
	total.Finish()
}

func TestNilSafe(t *testing.T) {
	var r *Reporter
	b := r.Start("x", 1, "")
	b.Add(1)
	b.Skip(1)
	b.SetTotal(3)
	b.SetCurrent(2)
	b.Set("k", "v")
	b.Finish()
	r.Println("nothing")
	if b.Current() != 0 {
		t.Fatal("nil bar has a count")
	}
}

func TestSetRemove(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	r := NewWithOptions(&buf, false, Options{Now: clk.Now})
	b := r.Start("t", 0, "")
	b.Set("loss", "1")
	b.Set("lr", "2e-4")
	b.Set("loss", "0.5")
	b.Set("lr", "")
	b.Finish()
	if got, want := strings.TrimSpace(buf.String()), "t: 0 in 0s loss=0.5"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {999, "999 B"}, {1000, "1.00 kB"}, {1536, "1.54 kB"},
		{12_345_678, "12.3 MB"}, {999_999_999, "1000 MB"}, {7_250_000_000, "7.25 GB"},
		{150_000_000_000, "150 GB"},
	} {
		if got := FormatBytes(tc.n); got != tc.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {42 * time.Second, "42s"}, {185 * time.Second, "3m05s"}, {2*time.Hour + 7*time.Minute, "2h07m"},
	} {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func Example() {
	// Not a terminal: plain log lines. A frozen clock keeps the output fixed.
	frozen := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewWithOptions(os.Stdout, false, Options{Now: func() time.Time { return frozen }})
	bar := r.Start("train", 3, "steps")
	for range 3 {
		bar.Add(1)
	}
	bar.Set("loss", "0.42")
	bar.Finish()
	// Output: train: 100% 3/3 steps in 0s loss=0.42
}
