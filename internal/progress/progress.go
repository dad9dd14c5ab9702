// Package progress reports the progress of long work (downloads, training) to a
// writer.
//
// On a terminal a Reporter draws one line per active Bar (description,
// percentage, a bar, counts or bytes, rate, ETA and custom fields such as
// loss=… lr=…), redrawn in place at most every Refresh; finished bars stay on
// screen as a final line. Elsewhere (a log file, CI) it writes a plain log line
// per bar at most every Interval, plus a final line when the bar finishes.
//
// Every method is safe for concurrent use, so several goroutines (parallel
// shard downloads, say) may update the same Bar or different Bars of one
// Reporter. A nil *Reporter and a nil *Bar are valid and do nothing, so
// library code can take an optional reporter without checks.
//
// Why not github.com/schollz/progressbar/v3: it draws a single bar per writer
// (no block of concurrent bars), has no plain-log mode for non-terminals and
// no injectable clock to test rendering deterministically. What we need fits
// in a few hundred lines without a dependency.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Bytes is the unit of a Bar that counts bytes: counts print as 1.2 MB, rates as MB/s.
const Bytes = "B"

// Options configures a Reporter. Zero values pick the defaults.
type Options struct {
	// Refresh is the shortest time between two redraws on a terminal (default 150ms).
	Refresh time.Duration
	// Interval is the shortest time between two log lines of one bar when not
	// on a terminal (default 10s).
	Interval time.Duration
	// Width is the terminal width in columns; lines are cut to fit (default 100).
	Width int
	// Now is the clock (default time.Now); tests inject a fake one.
	Now func() time.Time
}

// Reporter renders the bars it started to one writer.
type Reporter struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	opt    Options
	active []*Bar
	drawn  int // lines of the live block currently on screen (terminal)
	last   time.Time
}

// New returns a Reporter writing to w. isTerminal selects the live bar display
// (true) or plain log lines (false).
func New(w io.Writer, isTerminal bool) *Reporter {
	return NewWithOptions(w, isTerminal, Options{})
}

// NewWithOptions is New with explicit options.
func NewWithOptions(w io.Writer, isTerminal bool, opt Options) *Reporter {
	if opt.Refresh <= 0 {
		opt.Refresh = 150 * time.Millisecond
	}
	if opt.Interval <= 0 {
		opt.Interval = 10 * time.Second
	}
	if opt.Width <= 0 {
		opt.Width = 100
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Reporter{w: w, tty: isTerminal, opt: opt}
}

// Bar is one task with a count that grows towards a total.
type Bar struct {
	r       *Reporter
	desc    string
	unit    string
	total   int64
	cur     int64
	base    int64 // part of cur that was skipped (not counted in the rate)
	start   time.Time
	lastLog time.Time
	keys    []string
	vals    map[string]string
	done    bool
}

// Start begins a new bar. total <= 0 means unknown (no percentage or ETA).
// unit is Bytes, or a word printed after counts such as "steps" or "files"
// ("" prints bare numbers and "it/s").
func (r *Reporter) Start(desc string, total int64, unit string) *Bar {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opt.Now()
	b := &Bar{r: r, desc: desc, unit: unit, total: total, start: now, lastLog: now, vals: map[string]string{}}
	r.active = append(r.active, b)
	if r.tty {
		r.redrawLocked(nil, now)
	}
	return b
}

// Println writes a line of text. On a terminal it goes above the live bars,
// which are redrawn below it; use it rather than writing to the same writer
// directly while bars are live.
func (r *Reporter) Println(text string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.tty {
		fmt.Fprintln(r.w, text)
		return
	}
	r.clearBlockLocked()
	fmt.Fprintln(r.w, text)
	r.drawBlockLocked(r.opt.Now())
}

// Add advances the bar by n.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	b.cur += n
	b.r.updatedLocked(b)
}

// Skip advances the bar by n without counting it in the rate: work that was
// already done (bytes resumed from a partial download, files already cached).
func (b *Bar) Skip(n int64) {
	if b == nil {
		return
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	b.cur += n
	b.base += n
	b.r.updatedLocked(b)
}

// SetCurrent sets the count.
func (b *Bar) SetCurrent(n int64) {
	if b == nil {
		return
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	b.cur = n
	if b.base > n {
		b.base = n
	}
	b.r.updatedLocked(b)
}

// SetTotal changes the total (<= 0: unknown).
func (b *Bar) SetTotal(n int64) {
	if b == nil {
		return
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	b.total = n
	b.r.updatedLocked(b)
}

// Set sets a custom field shown after the rate as key=value, in the order the
// keys were first set (for example "loss", "lr"). An empty value removes it.
func (b *Bar) Set(key, value string) {
	if b == nil {
		return
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	if value == "" {
		if _, ok := b.vals[key]; ok {
			delete(b.vals, key)
			for i, k := range b.keys {
				if k == key {
					b.keys = append(b.keys[:i], b.keys[i+1:]...)
					break
				}
			}
		}
		return
	}
	if _, ok := b.vals[key]; !ok {
		b.keys = append(b.keys, key)
	}
	b.vals[key] = value
}

// Current returns the count.
func (b *Bar) Current() int64 {
	if b == nil {
		return 0
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	return b.cur
}

// Finish ends the bar and prints its final line. Calling it again does nothing.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	r := b.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	for i, a := range r.active {
		if a == b {
			r.active = append(r.active[:i], r.active[i+1:]...)
			break
		}
	}
	now := r.opt.Now()
	if r.tty {
		r.redrawLocked(b, now)
		return
	}
	fmt.Fprintln(r.w, b.lineLocked(now, false, 0))
}

// updatedLocked renders after a change, throttled.
func (r *Reporter) updatedLocked(b *Bar) {
	if b.done {
		return
	}
	now := r.opt.Now()
	if r.tty {
		if now.Sub(r.last) >= r.opt.Refresh {
			r.redrawLocked(nil, now)
		}
		return
	}
	if now.Sub(b.lastLog) >= r.opt.Interval {
		b.lastLog = now
		fmt.Fprintln(r.w, b.lineLocked(now, false, 0))
	}
}

// redrawLocked replaces the live block; finished (if not nil) is printed
// above it as a permanent line.
func (r *Reporter) redrawLocked(finished *Bar, now time.Time) {
	r.clearBlockLocked()
	if finished != nil {
		io.WriteString(r.w, finished.lineLocked(now, true, r.opt.Width)+"\n")
	}
	r.drawBlockLocked(now)
}

// clearBlockLocked moves the cursor to the start of the live block and clears
// from there to the end of the screen.
func (r *Reporter) clearBlockLocked() {
	if r.drawn > 0 {
		fmt.Fprintf(r.w, "\x1b[%dA", r.drawn)
	}
	io.WriteString(r.w, "\r\x1b[J")
	r.drawn = 0
}

func (r *Reporter) drawBlockLocked(now time.Time) {
	var sb strings.Builder
	for _, b := range r.active {
		sb.WriteString(b.lineLocked(now, true, r.opt.Width))
		sb.WriteByte('\n')
	}
	io.WriteString(r.w, sb.String())
	r.drawn = len(r.active)
	r.last = now
}

// lineLocked formats the bar. tty adds the drawn bar and cuts to width.
func (b *Bar) lineLocked(now time.Time, tty bool, width int) string {
	elapsed := now.Sub(b.start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(b.cur-b.base) / s
	}
	var head, tail strings.Builder
	head.WriteString(b.desc)
	pct := -1.0
	if b.total > 0 {
		pct = float64(b.cur) / float64(b.total)
		pct = min(max(pct, 0), 1)
	}
	if tty {
		if pct >= 0 {
			fmt.Fprintf(&head, " %3.0f%% ", pct*100)
		}
	} else {
		head.WriteString(":")
		if pct >= 0 {
			fmt.Fprintf(&head, " %.0f%%", pct*100)
		}
	}
	fmt.Fprintf(&tail, " %s", b.countsLocked())
	if rate > 0 {
		fmt.Fprintf(&tail, " %s", formatRate(rate, b.unit))
	}
	switch {
	case b.done:
		fmt.Fprintf(&tail, " in %s", formatDuration(elapsed))
	case b.total > 0 && rate > 0 && b.cur < b.total:
		fmt.Fprintf(&tail, " ETA %s", formatDuration(time.Duration(float64(b.total-b.cur)/rate*float64(time.Second))))
	}
	for _, k := range b.keys {
		fmt.Fprintf(&tail, " %s=%s", k, b.vals[k])
	}
	if !tty {
		return head.String() + tail.String()
	}
	if pct >= 0 {
		room := width - utf8.RuneCountInString(head.String()) - utf8.RuneCountInString(tail.String()) - 2
		n := min(max(room, 10), 30)
		fill := int(pct*float64(n) + 0.5)
		head.WriteString("|" + strings.Repeat("█", fill) + strings.Repeat(" ", n-fill) + "|")
	}
	return cut(head.String()+tail.String(), width)
}

func (b *Bar) countsLocked() string {
	switch b.unit {
	case Bytes:
		if b.total > 0 {
			return FormatBytes(b.cur) + "/" + FormatBytes(b.total)
		}
		return FormatBytes(b.cur)
	case "":
		if b.total > 0 {
			return fmt.Sprintf("%d/%d", b.cur, b.total)
		}
		return fmt.Sprintf("%d", b.cur)
	default:
		if b.total > 0 {
			return fmt.Sprintf("%d/%d %s", b.cur, b.total, b.unit)
		}
		return fmt.Sprintf("%d %s", b.cur, b.unit)
	}
}

// cut shortens s to at most width runes.
func cut(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width])
}

// FormatBytes prints n with a decimal unit: 999 B, 1.5 kB, 12.3 MB, 7.25 GB.
func FormatBytes(n int64) string {
	const units = "kMGTPE"
	if n < 1000 && n > -1000 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	i := -1
	for (v >= 1000 || v <= -1000) && i < len(units)-1 {
		v /= 1000
		i++
	}
	switch {
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f %cB", v, units[i])
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f %cB", v, units[i])
	}
	return fmt.Sprintf("%.2f %cB", v, units[i])
}

func formatRate(rate float64, unit string) string {
	switch unit {
	case Bytes:
		return FormatBytes(int64(rate)) + "/s"
	case "":
		return formatFloat(rate) + " it/s"
	}
	return formatFloat(rate) + " " + unit + "/s"
}

func formatFloat(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// formatDuration prints 42s, 3m05s, 2h07m.
func formatDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
}
