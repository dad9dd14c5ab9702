//go:build unix

package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bidora/bidora/dataset"
)

// tokenize --jsonl honours cancellation while blocked on a FIFO.
func TestTokenizeJSONLCancel(t *testing.T) {
	// A FIFO that is opened for writing but never written: the read blocks until the
	// context ends. (The tiny model's tokenizer loads in well under the 300 ms.)
	fifo := filepath.Join(t.TempDir(), "fifo.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString(`{"text":"Hello world"}` + "\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	var stdout strings.Builder
	err = runTokenize(ctx, &IO{In: strings.NewReader(""), Out: &stdout, Err: &strings.Builder{}},
		&tokenizeOptions{Tokenizer: tinyModelDir(t, "qwen2"), JSONL: fifo})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
	if !strings.HasPrefix(stdout.String(), `{"ids":[`) {
		t.Errorf("the row sent before the cancel was not answered: %q", stdout.String())
	}
}

// loadRows reads with the command's context: a FIFO nobody writes no longer holds
// train for minutes after Ctrl-C.
func TestLoadRowsCancel(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := loadRows(ctx, &IO{}, fifo, "", "", "", dataset.ReadOptions{})
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}
