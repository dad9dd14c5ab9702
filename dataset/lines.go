package dataset

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// TooLongError is a row (line, array element, CSV record, text file) over the
// ReadOptions.MaxLineBytes limit.
type TooLongError struct {
	Source string // file:line where the row starts
	What   string // "line", "array element", "CSV record", "text file"
	Limit  int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("%s: %s longer than the limit of %s", e.Source, e.What, FormatBytes(e.Limit))
}

// FormatBytes writes n bytes as "64 MiB", "1.5 KiB" or "100 bytes".
func FormatBytes(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// lineBufSize is the read buffer of a LineReader: lines up to this long are returned
// without a copy.
const lineBufSize = 1 << 20

// LineReader reads '\n'-terminated lines of at most a given length. A longer line is a
// *TooLongError, found after reading at most the limit (plus one buffer) of it, so an
// endless line (/dev/zero) costs bounded memory and time.
type LineReader struct {
	br    *bufio.Reader
	name  string
	max   int
	line  int
	parts [][]byte
}

// NewLineReader reads lines from r; name is used in errors, max bounds a line's bytes
// (without its newline; ≤ 0 means DefaultMaxLineBytes).
func NewLineReader(r io.Reader, name string, max int) *LineReader {
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	return &LineReader{br: bufio.NewReaderSize(r, min(lineBufSize, max+1)), name: name, max: max}
}

// Line is the number of the line last returned by Next (1-based).
func (lr *LineReader) Line() int { return lr.line }

// Buffered is how many bytes are already read ahead: 0 means the next Next may wait
// for input.
func (lr *LineReader) Buffered() int { return lr.br.Buffered() }

// Next returns the next line without its '\n' (a '\r' before it is kept). The slice is
// valid until the following call. At the end it returns io.EOF; a last line without a
// newline is returned first.
func (lr *LineReader) Next() ([]byte, error) {
	lr.parts = lr.parts[:0]
	total := 0
	for {
		chunk, err := lr.br.ReadSlice('\n')
		total += len(chunk)
		n := total
		if err == nil {
			n-- // the newline
		}
		if n > lr.max {
			lr.parts = nil
			return nil, &TooLongError{Source: fmt.Sprintf("%s:%d", lr.name, lr.line+1), What: "line", Limit: lr.max}
		}
		if err == bufio.ErrBufferFull {
			// A long line: keep a copy of this buffer's worth and read on. The parts are
			// joined into one exact allocation at the end, so a line costs its size twice
			// at most, where growing one buffer would cost up to five times.
			lr.parts = append(lr.parts, append([]byte(nil), chunk...))
			continue
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("reading %s at line %d: %w", lr.name, lr.line+1, err)
		}
		if total == 0 {
			return nil, io.EOF
		}
		lr.line++
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		if len(lr.parts) == 0 {
			return chunk, nil
		}
		out := make([]byte, 0, n)
		for _, p := range lr.parts {
			out = append(out, p...)
		}
		out = append(out, chunk...)
		lr.parts = lr.parts[:0]
		return out, nil
	}
}

// ContextReader returns r made to return ctx.Err() as soon as ctx is done, even while
// a Read of r blocks (a FIFO, a pipe, a terminal), and a func to call when done with
// it. Reads then run on a helper goroutine; a cancelled read leaves it blocked until
// the read underneath returns (closing a pipe or FIFO ends it). A nil ctx, or one that
// is never done, returns r itself.
func ContextReader(ctx context.Context, r io.Reader) (io.Reader, func()) {
	return readerWithContext(ctx, r)
}

func readerWithContext(ctx context.Context, r io.Reader) (io.Reader, func()) {
	if ctx == nil || ctx.Done() == nil {
		return r, func() {}
	}
	cr := &ctxReader{ctx: ctx, r: r, req: make(chan int), res: make(chan readResult, 1), stop: make(chan struct{})}
	go cr.loop()
	return cr, func() { close(cr.stop) }
}

type readResult struct {
	n   int
	err error
}

type ctxReader struct {
	ctx     context.Context
	r       io.Reader
	buf     []byte // owned by loop between a request and its result
	req     chan int
	res     chan readResult
	stop    chan struct{}
	pending bool
	err     error
}

func (c *ctxReader) loop() {
	for {
		select {
		case n := <-c.req:
			if cap(c.buf) < n {
				c.buf = make([]byte, n)
			}
			k, err := c.r.Read(c.buf[:n])
			c.res <- readResult{k, err}
		case <-c.stop:
			return
		}
	}
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	if !c.pending {
		select {
		case c.req <- min(len(p), lineBufSize):
			c.pending = true
		case <-c.ctx.Done():
			c.err = c.ctx.Err()
			return 0, c.err
		}
	}
	select {
	case r := <-c.res:
		c.pending = false
		copy(p, c.buf[:r.n])
		return r.n, r.err
	case <-c.ctx.Done():
		c.err = c.ctx.Err()
		return 0, c.err
	}
}

// OpenFile opens a file for reading. With a context, opening a FIFO (which blocks
// until a writer opens it) is abandoned when ctx is done, with ctx's error.
func OpenFile(ctx context.Context, path string) (*os.File, error) { return openData(ctx, path) }

func openData(ctx context.Context, path string) (*os.File, error) {
	if ctx != nil && ctx.Done() != nil {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			return openFIFO(ctx, path)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading data: %w", err)
	}
	return f, nil
}

func openFIFO(ctx context.Context, path string) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, fmt.Errorf("reading data: %w", o.err)
		}
		return o.f, nil
	case <-ctx.Done():
		// The open blocks until a writer comes: be that writer for a moment, so that it
		// returns, then close what it opened. (Retried: the open may not have reached
		// the kernel yet.)
		go func() {
			for range 100 {
				releaseFIFO(path)
				select {
				case o := <-ch:
					if o.f != nil {
						o.f.Close()
					}
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		return nil, ctx.Err()
	}
}

// isCancel reports whether err comes from a context.
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
