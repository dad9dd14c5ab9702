package fim

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/bidora/bidora/dataset"
)

// BenchmarkExample compares building a FIM example (three encodes: prefix, suffix,
// middle) with encoding the same document as a plain text row, on a 300-line Go file
// with the qwen3 tokenizer.
func BenchmarkExample(b *testing.B) {
	src, err := os.ReadFile("fim.go")
	if err != nil {
		b.Fatal(err)
	}
	text := string(src)
	tok := loadTok(b, qwen3Dir)
	v, err := Detect(tok)
	if err != nil {
		b.Fatal(err)
	}
	bld := NewBuilder(tok, v, nil)
	b.Run("fim-psm", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 1))
		for b.Loop() {
			p, m, s := Split(text, r)
			if _, err := bld.Example(Parts{Prefix: p, Middle: m, Suffix: s}, PSM, LossAll); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		enc, err := dataset.NewEncoder(tok, dataset.EncodeOptions{Template: dataset.TemplatePlain, EOS: v.End})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, _, err := enc.Encode(dataset.Row{Kind: dataset.KindText, Text: text}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
