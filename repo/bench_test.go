package repo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/tokenizer"
)

// BenchmarkRows measures what documents cost over tokenising each file once: walking
// this package's sources, deduplicating them and cutting them into 512-token chunks
// (per-line counts, then a check of each chunk) with the shared qwen3 tokenizer.
func BenchmarkRows(b *testing.B) {
	dir := filepath.Join("..", "..", "shared", "tokenizers", "qwen3")
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		b.Skip("shared qwen3 tokenizer absent")
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	count := func(s string) int { return len(tok.Encode(s)) }
	files, _, err := Walk(context.Background(), ".", Options{Lang: []string{"go"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode-once", func(b *testing.B) {
		for b.Loop() {
			for _, f := range files {
				count(f.Text)
			}
		}
	})
	b.Run("walk-dedupe-rows", func(b *testing.B) {
		for b.Loop() {
			fs, _, _ := Walk(context.Background(), ".", Options{Lang: []string{"go"}})
			fs, _ = Dedupe(fs, 0.85)
			Rows(fs, RowOptions{Budget: 512, Count: count, Overlap: DefaultOverlap})
		}
	})
	b.Run("dedupe", func(b *testing.B) {
		for b.Loop() {
			Dedupe(files, 0.85)
		}
	})
}
