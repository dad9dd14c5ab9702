package bilevel

import (
	"fmt"
	"testing"

	"github.com/bidora/bidora/dataset"
)

// TestSplitDataBy checks the split by group: every group lands whole on one side,
// about the requested share of the groups is outer, the split is fixed by the seed,
// retraining sees every example, and with no group function or a single group the
// examples are split one by one as SplitData does.
func TestSplitDataBy(t *testing.T) {
	var ex []dataset.Example
	for f := range 10 {
		for c := range 1 + f%4 { // files of 1 to 4 chunks
			ex = append(ex, dataset.Example{InputIDs: []int32{int32(len(ex))}, Source: fmt.Sprintf("src/f%d.rs:%d-%d", f, 40*c+1, 40*c+44)})
		}
	}
	file := func(e *dataset.Example) string { return e.Source[:len("src/fN.rs")] }
	d, err := SplitDataBy(ex, 0.2, 7, file)
	if err != nil {
		t.Fatal(err)
	}
	if d.Groups != 10 {
		t.Errorf("Groups = %d, want 10", d.Groups)
	}
	side := map[string]string{}
	outerFiles := map[string]bool{}
	for name, set := range map[string][]dataset.Example{"inner": d.Inner, "outer": d.Outer} {
		for i := range set {
			f := file(&set[i])
			if s, ok := side[f]; ok && s != name {
				t.Errorf("file %s is on both sides", f)
			}
			side[f] = name
			if name == "outer" {
				outerFiles[f] = true
			}
		}
	}
	if len(outerFiles) != 2 {
		t.Errorf("%d outer files, want 2 (20%% of 10)", len(outerFiles))
	}
	if len(d.Retrain) != len(ex) || len(d.Inner)+len(d.Outer) != len(ex) {
		t.Errorf("inner %d + outer %d, retrain %d; want %d examples", len(d.Inner), len(d.Outer), len(d.Retrain), len(ex))
	}
	again, _ := SplitDataBy(ex, 0.2, 7, file)
	if fmt.Sprint(again.Outer) != fmt.Sprint(d.Outer) {
		t.Error("the same seed gave another split")
	}

	// No group function, or one group only: by example, like SplitData.
	byEx, _ := SplitData(ex, 0.2, 7)
	for _, g := range []func(*dataset.Example) string{nil, func(*dataset.Example) string { return "one" }} {
		d, err := SplitDataBy(ex, 0.2, 7, g)
		if err != nil {
			t.Fatal(err)
		}
		if d.Groups != 0 || fmt.Sprint(d.Outer) != fmt.Sprint(byEx.Outer) {
			t.Errorf("fallback: Groups %d, outer %v; want 0 and SplitData's %v", d.Groups, d.Outer, byEx.Outer)
		}
	}
}
