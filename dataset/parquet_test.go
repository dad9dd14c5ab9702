package dataset

import (
	"fmt"
	"github.com/parquet-go/parquet-go/compress"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type pqRow struct {
	Instruction string `parquet:"instruction"`
	Output      string `parquet:"output"`
}

type pqText struct {
	Content string `parquet:"content"`
}

func TestReadParquet(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "train-00000-of-00001.parquet")
	in := []pqRow{{"Make a cube", "cube(10);"}, {"Make a sphere", "sphere(5);"}, {"", "x"}}
	if err := parquet.WriteFile(p, in); err != nil {
		t.Fatal(err)
	}
	rows, bad, err := ReadParquet(p, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Output != "sphere(5);" || rows[0].Kind != KindInstruction {
		t.Fatalf("rows %+v", rows)
	}
	if len(bad) != 1 || !strings.HasSuffix(bad[0].Source, ":row 3") || !strings.Contains(bad[0].Reason, `"instruction" is empty`) {
		t.Fatalf("bad %+v", bad)
	}
	// Column mapping: a "content" column read as text.
	p2 := filepath.Join(dir, "text.parquet")
	if err := parquet.WriteFile(p2, []pqText{{"fn main() {}"}}); err != nil {
		t.Fatal(err)
	}
	rows, _, err = ReadParquet(p2, ReadOptions{Fields: Fields{Text: "content"}})
	if err != nil || len(rows) != 1 || rows[0].Kind != KindText || rows[0].Text != "fn main() {}" {
		t.Fatalf("mapped rows %+v err %v", rows, err)
	}
	if _, _, err := ReadParquet(filepath.Join(dir, "missing.parquet"), ReadOptions{}); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, _, err := ReadParquet(filepath.Join("parquet_test.go"), ReadOptions{}); err == nil || !strings.Contains(err.Error(), "not a readable parquet file") {
		t.Fatalf("non-parquet: %v", err)
	}
}

// TestParquetHostileFooter: a footer length larger than the file is refused before
// the parquet reader allocates it (PAR1PAR1 asked for 827 MB).
func TestParquetHostileFooter(t *testing.T) {
	for _, data := range [][]byte{
		[]byte("PAR1PAR1"),
		append([]byte("PAR1xxxxxxxx"), 0xff, 0xff, 0xff, 0xff, 'P', 'A', 'R', '1'),
		[]byte("PAR1 no magic at the end"),
	} {
		path := filepath.Join(t.TempDir(), "x.parquet")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := ReadParquet(path, ReadOptions{})
		if err == nil || !strings.Contains(err.Error(), "not a readable parquet file") {
			t.Errorf("%q: err %v", data, err)
		}
	}
}

// TestParquetPagesChecked: a page that declares more bytes than its column chunk (a
// 1 GB allocation in the parquet reader before this check) is refused at once, and
// real files with many pages, dictionaries and compression pass the check.
func TestParquetPagesChecked(t *testing.T) {
	_, _, err := ReadParquet(filepath.Join("testdata", "hostile-page-size.parquet"), ReadOptions{Fields: Fields{Text: "content"}})
	if err == nil || !strings.Contains(err.Error(), "beyond its column chunk") {
		t.Fatalf("hostile page size: err %v", err)
	}
	var rows []pqRow
	for i := range 5000 {
		rows = append(rows, pqRow{Instruction: strings.Repeat("make a cube ", i%7+1), Output: fmt.Sprintf("cube(%d);", i%13)})
	}
	for _, codec := range []compress.Codec{&parquet.Snappy, &parquet.Zstd, &parquet.Gzip, &parquet.Uncompressed} {
		path := filepath.Join(t.TempDir(), "many.parquet")
		if err := parquet.WriteFile(path, rows, parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(1000), parquet.Compression(codec)); err != nil {
			t.Fatal(err)
		}
		got, bad, err := ReadParquet(path, ReadOptions{})
		if err != nil || len(got) != len(rows) || len(bad) != 0 {
			t.Fatalf("%s: %d rows, %d bad, err %v", codec, len(got), len(bad), err)
		}
	}
}
