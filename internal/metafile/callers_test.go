package metafile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/chattemplate"
	"github.com/bidora/bidora/internal/metafile"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
	"github.com/bidora/bidora/tokenizer"
)

// TestCallersBounded: every metadata file a user points bidora at is read with a
// bound — an endless or huge file is refused with the limit named, not read into
// memory. (Sparse files: the test allocates nothing near their size.)
func TestCallersBounded(t *testing.T) {
	dir := t.TempDir()
	huge := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	old := tokenizer.MaxTokenizerBytes
	tokenizer.MaxTokenizerBytes = 1 << 20
	defer func() { tokenizer.MaxTokenizerBytes = old }()
	for _, tc := range []struct {
		name string
		load func(string) error
		size int64
	}{
		{"tokenizer.json", func(p string) error { _, err := tokenizer.Load(p); return err }, 2 << 20},
		{"tokenizer_config.json", func(p string) error { _, err := chattemplate.Load(p); return err }, metafile.MaxJSONBytes + 1},
		{"adapter_config.json", func(p string) error { _, err := peft.ReadConfig(p); return err }, metafile.MaxJSONBytes + 1},
		{"model.safetensors.index.json", func(p string) error { _, err := safetensors.ReadIndex(p); return err }, metafile.MaxJSONBytes + 1},
	} {
		err := tc.load(huge(tc.name, tc.size))
		var tl *metafile.TooLargeError
		if !errors.As(err, &tl) {
			t.Errorf("%s of %d bytes: err %v, want a TooLargeError", tc.name, tc.size, err)
		}
	}
}
