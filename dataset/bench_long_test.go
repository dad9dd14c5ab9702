package dataset

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/tokenizer"
)

// longLine is one JSONL text row of about n bytes of escaped code.
func longLine(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"text":"`)
	b.WriteString(strings.Repeat(`fn main() { println!(\"hi\"); }\n`, n/32))
	b.WriteString("\"}\n")
	return b.Bytes()
}

// BenchmarkReadLongLine reads a single 50 MB JSONL line.
func BenchmarkReadLongLine(b *testing.B) {
	data := longLine(50 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rows, _, err := Read(bytes.NewReader(data), "long.jsonl", ReadOptions{})
		if err != nil || len(rows) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadEncodeLongLine reads a 50 MB JSONL line and encodes it for training
// (Qwen3 tokenizer, --max-seq-len 2048): what one such row costs train.
func BenchmarkReadEncodeLongLine(b *testing.B) {
	dir := filepath.Join("..", "..", "shared", "tokenizers", "qwen3")
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		b.Skip("shared tokenizers absent")
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := NewEncoder(tok, EncodeOptions{Template: TemplatePlain, MaxSeqLen: 2048, EOS: 151645})
	if err != nil {
		b.Fatal(err)
	}
	data := longLine(50 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rows, _, err := Read(bytes.NewReader(data), "long.jsonl", ReadOptions{})
		if err != nil || len(rows) != 1 {
			b.Fatal(err)
		}
		ex, _, err := enc.Encode(rows[0])
		if err != nil || len(ex.InputIDs) != 2048 {
			b.Fatal(len(ex.InputIDs), err)
		}
	}
}
