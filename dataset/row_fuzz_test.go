package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bidora/bidora/internal/testutil"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// rowSeeds are JSONL rows of every kind, good and bad.
var rowSeeds = []string{
	`{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}`,
	`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[]},{"role":"tool","content":"r"},{"role":"assistant","content":"a"}]}`,
	`{"instruction":"Make a cube","input":"","output":"cube(10);"}`,
	`{"prompt":"def f(","completion":"x): pass","extra":[1,{"a":null}]}`,
	`{"text":"caf\u00e9 \ud83d\ude00 \ud800 x\"\\\/\b\f\n\r\t"}`,
	`{"code":"print(1)","text":"ignored"}`,
	`{"input_ids":[1,2,3],"labels":[-100,2,3]}`,
	`{"input_ids":[1,2],"labels":null}`,
	`{"text":"a","text":"b"}`,
	`{"input_ids":[1e2]}`,
	`{"input_ids":[-1]}`,
	`{"messages":"hi"}`,
	`{"messages":[{"role":"user","content":["part"]}]}`,
	`{"prompt":"p"}`,
	`{"text":"   "}`,
	`{"other":1}`,
	`[1]`,
	`{"text":"x"`,
	"{\"text\":\"\xff\xfe\"}",
}

// FuzzParseRow checks the hand-written row decoder against the same rules
// written with encoding/json (refParseRow): both accept the same rows and
// decode them to the same Row; invalid JSON is always refused. Decoding must
// not allocate far more than the row.
func FuzzParseRow(f *testing.F) {
	for _, s := range rowSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var row Row
		var err error
		if n := testutil.AllocBytes(func() { row, err = ParseRow(data, Fields{}) }); n > 16*uint64(len(data))+64<<10 {
			t.Fatalf("ParseRow of %d bytes allocated %d bytes", len(data), n)
		}
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("ParseRow accepted invalid JSON %q as %+v", data, row)
			}
			return
		}
		want, werr := refParseRow(data)
		if (err == nil) != (werr == nil) {
			t.Fatalf("ParseRow(%q) error %v; encoding/json reference error %v", data, err, werr)
		}
		if err == nil && !reflect.DeepEqual(row, want) {
			t.Fatalf("ParseRow(%q) =\n%+v\nreference\n%+v", data, row, want)
		}
		if err == nil && (row.Kind < KindChat || row.Kind > KindTokens) {
			t.Fatalf("ParseRow(%q) gave kind %d", data, row.Kind)
		}
		// A column mapping changes which keys are read, never whether decoding panics.
		_, _ = ParseRow(data, Fields{Text: "content", Prompt: "question", Completion: "answer", Messages: "conversations"})
	})
}

// refParseRow is ParseRow's rules for default field names, decoded with
// encoding/json.
func refParseRow(data []byte) (Row, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return Row{}, fmt.Errorf("not an object: %v", err)
	}
	str := func(key string, dst *string, required bool) error {
		raw, ok := obj[key]
		if !ok || string(raw) == "null" {
			if required {
				return errors.New("missing")
			}
			return nil
		}
		if raw[0] != '"' || json.Unmarshal(raw, dst) != nil {
			return errors.New("not a string")
		}
		if required && strings.TrimSpace(*dst) == "" {
			return errors.New("empty")
		}
		return nil
	}
	var row Row
	if raw, ok := obj["messages"]; ok {
		row.Kind = KindChat
		var elems []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
			return row, errors.New("messages: not a list")
		}
		for _, e := range elems {
			var m map[string]json.RawMessage
			if e[0] != '{' || json.Unmarshal(e, &m) != nil {
				return row, errors.New("message: not an object")
			}
			var msg Message
			for key, dst := range map[string]*string{"role": &msg.Role, "content": &msg.Content} {
				if v, ok := m[key]; ok && string(v) != "null" {
					if v[0] != '"' || json.Unmarshal(v, dst) != nil {
						return row, errors.New("message field: not a string")
					}
				}
			}
			row.Messages = append(row.Messages, msg)
		}
		if row.Messages == nil {
			row.Messages = []Message{}
		}
		return row, checkMessages(row.Messages)
	}
	if _, ok := obj["instruction"]; ok {
		row.Kind = KindInstruction
		if err := str("instruction", &row.Instruction, true); err != nil {
			return row, err
		}
		if err := str("input", &row.Input, false); err != nil {
			return row, err
		}
		return row, str("output", &row.Output, true)
	}
	if _, ok := obj["prompt"]; ok {
		row.Kind = KindCompletion
		if err := str("prompt", &row.Prompt, true); err != nil {
			return row, err
		}
		return row, str("completion", &row.Completion, true)
	}
	for _, key := range []string{"code", "text"} {
		if _, ok := obj[key]; ok {
			row.Kind = KindText
			return row, str(key, &row.Text, true)
		}
	}
	ints := func(raw json.RawMessage, dst *[]int) error {
		if raw[0] != '[' || json.Unmarshal(raw, dst) != nil {
			return errors.New("not a list of integers")
		}
		return nil
	}
	if raw, ok := obj["input_ids"]; ok {
		row.Kind = KindTokens
		if err := ints(raw, &row.InputIDs); err != nil {
			return row, err
		}
		if len(row.InputIDs) == 0 {
			return row, errors.New("empty")
		}
		for _, id := range row.InputIDs {
			if id < 0 {
				return row, errors.New("negative id")
			}
		}
		if raw, ok := obj["labels"]; ok && string(raw) != "null" {
			if err := ints(raw, &row.Labels); err != nil {
				return row, err
			}
			if len(row.Labels) != len(row.InputIDs) {
				return row, errors.New("labels not aligned")
			}
			for _, l := range row.Labels {
				if l < 0 && l != IgnoreIndex {
					return row, errors.New("bad label")
				}
			}
		}
		return row, nil
	}
	return row, errors.New("no known keys")
}

// FuzzRead checks the JSONL reader on arbitrary streams: each row and bad row
// it reports is ParseRow's verdict on the line its source names, in order,
// and Strict stops at exactly the first bad row.
func FuzzRead(f *testing.F) {
	f.Add([]byte(strings.Join(rowSeeds, "\n")))
	f.Add([]byte("\xEF\xBB\xBF" + rowSeeds[2] + "\r\n\n  \n" + rowSeeds[5]))
	f.Add([]byte(rowSeeds[6] + "\n" + strings.Repeat("x", 300) + "\n" + rowSeeds[3]))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := ReadOptions{MaxLineBytes: 256}
		rows, bad, err := Read(bytes.NewReader(data), "f.jsonl", opts)
		var tooLong *TooLongError
		if err != nil && !errors.As(err, &tooLong) {
			t.Fatalf("Read error %v is not a *TooLongError", err)
		}
		lines := bytes.Split(bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")), []byte("\n"))
		parse := func(src string) (Row, error) {
			var n int
			if _, err := fmt.Sscanf(src, "f.jsonl:%d", &n); err != nil || n < 1 || n > len(lines) {
				t.Fatalf("source %q names no line (%d lines)", src, len(lines))
			}
			return ParseRow(bytes.TrimSpace(lines[n-1]), Fields{})
		}
		for _, r := range rows {
			want, err := parse(r.Source)
			want.Source = r.Source
			if err != nil || !reflect.DeepEqual(r, want) {
				t.Fatalf("row %s = %+v; ParseRow gives %+v, %v", r.Source, r, want, err)
			}
		}
		for _, b := range bad {
			if _, err := parse(b.Source); err == nil || err.Error() != b.Reason {
				t.Fatalf("bad row %s: %s; ParseRow gives %v", b.Source, b.Reason, err)
			}
		}
		opts.Strict = true
		srows, _, serr := Read(bytes.NewReader(data), "f.jsonl", opts)
		switch {
		case len(bad) > 0 && serr == nil:
			t.Fatalf("Strict accepted a stream with bad row %s", bad[0].Source)
		case len(bad) == 0 && err == nil && (serr != nil || len(srows) != len(rows)):
			t.Fatalf("Strict read %d rows, %v; want %d rows", len(srows), serr, len(rows))
		}
	})
}

// FuzzReadPath reads arbitrary bytes as a data file of each format ReadPath
// knows by extension. It must return rows, bad rows or an error (never
// panic), every row of a known kind, Strict must refuse what has bad rows,
// and no format may allocate far more than the file holds.
func FuzzReadPath(f *testing.F) {
	exts := []string{".jsonl", ".json", ".csv", ".tsv", ".txt", ""}
	f.Add([]byte(strings.Join(rowSeeds[:8], "\n")), uint8(0))
	f.Add([]byte("["+strings.Join(rowSeeds[:7], ",")+"]"), uint8(1))
	f.Add([]byte("{\n  \"text\": \"a\"\n}\n{\"prompt\": \"p\",\n \"completion\": \"c\"}"), uint8(1))
	f.Add([]byte("prompt,completion\n\"a, b\",c\nx,\n\"unterminated\n"), uint8(2))
	f.Add([]byte("text\tother\nhello\t1\n\"q\"\"x\"\t2\n"), uint8(3))
	f.Add([]byte("messages,input_ids\n\"[{\"\"role\"\":\"\"assistant\"\",\"\"content\"\":\"\"x\"\"}]\",\n,\"[1,2]\"\n"), uint8(2))
	f.Add([]byte("plain text\x00with a NUL"), uint8(4))
	f.Add([]byte("\xEF\xBB\xBF[ ]"), uint8(5))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		path := filepath.Join(dir, "data"+exts[int(format)%len(exts)])
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := ReadOptions{MaxLineBytes: 1 << 12}
		var rows []Row
		var bad []BadRow
		var err error
		if n := testutil.AllocBytes(func() { rows, bad, err = ReadPath(context.Background(), path, opts) }); n > 64*uint64(len(data))+2<<20 {
			t.Fatalf("ReadPath of %d bytes allocated %d bytes", len(data), n)
		}
		for _, r := range rows {
			if r.Kind < KindChat || r.Kind > KindTokens || !strings.HasPrefix(r.Source, path) {
				t.Fatalf("row %+v", r)
			}
		}
		if err != nil {
			return
		}
		opts.Strict = true
		if _, _, serr := ReadPath(context.Background(), path, opts); (serr != nil) != (len(bad) > 0) {
			t.Fatalf("Strict error %v with %d bad rows", serr, len(bad))
		}
	})
}

// FuzzReadParquet reads arbitrary bytes as a parquet file, the format HF
// datasets are served in. It must return rows or an error, never panic, and
// not allocate far more than the file holds.
func FuzzReadParquet(f *testing.F) {
	dir := f.TempDir()
	seed := func(rows any) {
		p := filepath.Join(dir, "seed.parquet")
		var err error
		switch r := rows.(type) {
		case []pqRow:
			err = parquet.WriteFile(p, r)
		case []pqText:
			err = parquet.WriteFile(p, r)
		}
		if err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed([]pqRow{{"Make a cube", "cube(10);"}, {"", "x"}})
	seed([]pqText{{"fn main() {}"}})
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Add([]byte("PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f.parquet")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var rows []Row
		var err error
		if n := testutil.AllocBytes(func() { rows, _, err = ReadParquet(path, ReadOptions{Fields: Fields{Text: "content"}}) }); n > 256*uint64(len(data))+8<<20 {
			t.Fatalf("ReadParquet of %d bytes allocated %d bytes (err %v)", len(data), n, err)
		}
		for _, r := range rows {
			if r.Kind < KindChat || r.Kind > KindTokens {
				t.Fatalf("row %+v", r)
			}
		}
	})
}
