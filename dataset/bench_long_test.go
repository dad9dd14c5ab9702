package dataset

import (
	"bytes"
	"strings"
	"testing"
)

func longLine(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"text":"`)
	b.WriteString(strings.Repeat(`fn main() { println!(\"hi\"); }\n`, n/32))
	b.WriteString("\"}\n")
	return b.Bytes()
}

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
