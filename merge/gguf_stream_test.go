package merge

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bidora/bidora/gguf"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

// Streaming in blocks of a few rows (and raw copies of tensors already in
// the output type) writes the same bytes as one block a tensor, for each
// output type, with a DoRA adapter folded in.
func TestExportGGUFBlocks(t *testing.T) {
	baseDir, mcfg := writeBase(t, tinymodel.Options{DType: safetensors.BF16, HiddenSize: 256, IntermediateSize: 512, NumLayers: 2, NumHeads: 4})
	cfg := peft.NewConfig("b", 4, 8, 0, slices.Clone(modelcfg.Projections))
	cfg.UseDora = true
	adDir, _ := writeAdapter(t, mcfg, cfg, 3)
	for _, c := range []struct {
		typ gguf.TensorType
		mix gguf.Mix
	}{{gguf.F32, ""}, {gguf.BF16, ""}, {gguf.F16, ""}, {gguf.Q8_0, ""}, {gguf.F32, gguf.MixQ4_K_M}} {
		for _, ad := range []string{"", adDir} {
			var files [][]byte
			for _, block := range []int{0, 300} { // default (whole tensors here), ~1 row of 256
				path := filepath.Join(t.TempDir(), "m.gguf")
				if _, err := ExportGGUF(context.Background(), baseDir, ad, path, GGUFOptions{Type: c.typ, Mix: c.mix, BlockValues: block}); err != nil {
					t.Fatal(err)
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, data)
			}
			if !bytes.Equal(files[0], files[1]) {
				t.Errorf("%s %s adapter %v: blocks of rows give other bytes than whole tensors", c.typ, c.mix, ad != "")
			}
		}
	}
}
