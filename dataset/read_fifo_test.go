//go:build unix

package dataset

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Reading stops promptly when the context ends, even while blocked on a FIFO that no
// one writes: in open (no writer yet) and in read (a writer that sends nothing).
func TestReadCancelFIFO(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writer bool
		read   func(ctx context.Context, path string) error
	}{
		{"open ReadPath", false, func(ctx context.Context, p string) error { _, _, err := ReadPath(ctx, p, ReadOptions{}); return err }},
		{"open ReadFile", false, func(ctx context.Context, p string) error {
			_, _, err := ReadFile(p, ReadOptions{Context: ctx})
			return err
		}},
		{"read ReadPath", true, func(ctx context.Context, p string) error { _, _, err := ReadPath(ctx, p, ReadOptions{}); return err }},
		{"read JSON array", true, func(ctx context.Context, p string) error {
			_, _, err := ReadPath(ctx, p+".json", ReadOptions{})
			return err
		}},
		{"read CSV", true, func(ctx context.Context, p string) error {
			_, _, err := ReadPath(ctx, p+".csv", ReadOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "fifo")
			target := p
			switch {
			case strings.HasSuffix(tc.name, "array"):
				target += ".json"
			case strings.HasSuffix(tc.name, "CSV"):
				target += ".csv"
			}
			if err := syscall.Mkfifo(target, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			if tc.writer {
				// Hold the FIFO open for writing (O_RDWR does not wait for a reader) and,
				// for the array and CSV, send a start that leaves the reader waiting.
				w, err := os.OpenFile(target, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				switch {
				case strings.HasSuffix(tc.name, "array"):
					w.WriteString(`[{"text":"a"},`)
				case strings.HasSuffix(tc.name, "CSV"):
					w.WriteString("text\nhello\n")
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- tc.read(ctx, p) }()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err %v, want context.Canceled", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("returned after %v", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still reading 5 s after the cancel")
			}
		})
	}
}
