package examples

import (
	"testing"

	"github.com/bidora/bidora/dataset"
)

func TestExampleDataParses(t *testing.T) {
	dir := t.TempDir()
	train, val, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[dataset.Kind]int{}
	for _, p := range []string{train, val} {
		rows, bad, err := dataset.ReadFile(p, dataset.ReadOptions{Strict: true})
		if err != nil || len(bad) > 0 || len(rows) == 0 {
			t.Fatalf("%s: %d rows, bad %v, err %v", p, len(rows), bad, err)
		}
		for _, r := range rows {
			kinds[r.Kind]++
		}
	}
	for _, k := range []dataset.Kind{dataset.KindChat, dataset.KindInstruction, dataset.KindCompletion, dataset.KindText} {
		if kinds[k] == 0 {
			t.Errorf("no %v rows in the example data", k)
		}
	}
}
