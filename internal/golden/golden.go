// Package golden reads the committed float64-reference goldens (model/testdata/golden)
// for the tests of several packages.
package golden

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/dataset"
)

// Examples reads dir/batch.json (input_ids, attention_mask, labels as the reference
// wrote them) as training examples, each cut to its attention mask.
func Examples(t testing.TB, dir string) []dataset.Example {
	t.Helper()
	var batch struct {
		InputIDs      [][]int32 `json:"input_ids"`
		AttentionMask [][]int32 `json:"attention_mask"`
		Labels        [][]int32 `json:"labels"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "batch.json"))
	if err != nil {
		t.Fatalf("the committed golden batch is missing: %v", err)
	}
	if err := json.Unmarshal(data, &batch); err != nil {
		t.Fatal(err)
	}
	var exs []dataset.Example
	for i, ids := range batch.InputIDs {
		n := 0
		for _, m := range batch.AttentionMask[i] {
			n += int(m)
		}
		exs = append(exs, dataset.Example{InputIDs: ids[:n], Labels: batch.Labels[i][:n]})
	}
	return exs
}
