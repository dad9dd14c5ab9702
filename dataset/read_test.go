package dataset

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A line over MaxLineBytes is an error naming file:line and the limit, found without
// reading the rest of it: /dev/zero (one endless line) fails fast instead of eating
// memory until the process dies.
func TestReadBoundsLines(t *testing.T) {
	in := `{"text":"a"}` + "\n" + `{"text":"` + strings.Repeat("x", 200) + `"}` + "\n"
	for _, strict := range []bool{false, true} {
		rows, _, err := Read(strings.NewReader(in), "d.jsonl", ReadOptions{MaxLineBytes: 100, Strict: strict})
		var tl *TooLongError
		if !errors.As(err, &tl) || tl.Source != "d.jsonl:2" || len(rows) != 1 {
			t.Fatalf("strict %v: rows %d, err %v; want a TooLongError at d.jsonl:2", strict, len(rows), err)
		}
		if want := "d.jsonl:2: line longer than the limit of 100 bytes"; err.Error() != want {
			t.Fatalf("err %q, want %q", err, want)
		}
	}
	// Exactly at the limit is fine, with or without the final newline.
	line := `{"text":"` + strings.Repeat("y", 89) + `"}` // 100 bytes
	for _, in := range []string{line, line + "\n", line + "\n\n"} {
		if rows, _, err := Read(strings.NewReader(in), "d.jsonl", ReadOptions{MaxLineBytes: 100}); err != nil || len(rows) != 1 {
			t.Fatalf("%d-byte line: rows %d err %v", len(line), len(rows), err)
		}
	}
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	for _, read := range []func() error{
		func() error { _, _, err := ReadFile("/dev/zero", ReadOptions{MaxLineBytes: 4 << 20}); return err },
		func() error {
			_, _, err := ReadPath(context.Background(), "/dev/zero", ReadOptions{MaxLineBytes: 4 << 20})
			return err
		},
	} {
		start := time.Now()
		err := read()
		var tl *TooLongError
		if !errors.As(err, &tl) || tl.Source != "/dev/zero:1" || !strings.Contains(err.Error(), "4 MiB") {
			t.Fatalf("/dev/zero: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("/dev/zero took %v", d)
		}
	}
}

// A long row costs about its own size: the line (read in buffer-sized parts, joined
// once) and its decoded text, not the many copies of growing buffers and reflection.
func TestReadLongLineMemory(t *testing.T) {
	data := longLine(16 << 20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rows, _, err := Read(bytes.NewReader(data), "long.jsonl", ReadOptions{})
	runtime.ReadMemStats(&after)
	if err != nil || len(rows) != 1 || len(rows[0].Text) < 15<<20 {
		t.Fatalf("rows %d err %v", len(rows), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(3.5*float64(len(data))) {
		t.Errorf("reading a %d MB line allocated %d MB, want at most 3.5 times the line", len(data)>>20, alloc>>20)
	}
}

// blockingReader blocks in Read until closed.
type blockingReader struct{ done chan struct{} }

func (b blockingReader) Read([]byte) (int, error) {
	<-b.done
	return 0, io.EOF
}

func TestReadCancelBlockingReader(t *testing.T) {
	br := blockingReader{make(chan struct{})}
	defer close(br.done)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := Read(br, "pipe", ReadOptions{Context: ctx})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
	// Cancelled before the first row: nothing is read.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	rows, _, err := Read(strings.NewReader(`{"text":"a"}`+"\n"), "d.jsonl", ReadOptions{Context: ctx2})
	if !errors.Is(err, context.Canceled) || len(rows) != 0 {
		t.Fatalf("rows %d err %v", len(rows), err)
	}
}

func TestReadPathFormats(t *testing.T) {
	ctx := context.Background()
	const bom = "\uFEFF"
	for _, tc := range []struct {
		name, content string
		opts          ReadOptions
		want          []Row    // Kind, Source (file name only) and the text fields
		bad           []string // "line: reason part"
	}{
		{"d.jsonl", bom + `{"text":"a"}` + "\n\n" + `{"prompt":"p","completion":"c"}`, ReadOptions{},
			[]Row{{Kind: KindText, Source: "d.jsonl:1", Text: "a"}, {Kind: KindCompletion, Source: "d.jsonl:3", Prompt: "p", Completion: "c"}}, nil},
		{"d.ndjson", `{"code":"x"}`, ReadOptions{}, []Row{{Kind: KindText, Source: "d.ndjson:1", Text: "x"}}, nil},
		// A JSON array: rows named by the line they start on, bad elements skipped.
		{"d.json", bom + "[\n  {\"text\": \"a\"},\n  {\"nope\": 1},\n  5,\n  {\n    \"prompt\": \"p\",\n    \"completion\": \"c\"\n  }\n]\n", ReadOptions{},
			[]Row{{Kind: KindText, Source: "d.json:2", Text: "a"}, {Kind: KindCompletion, Source: "d.json:5", Prompt: "p", Completion: "c"}},
			[]string{`d.json:3: no known keys (have "nope"); want messages, instruction/output, prompt/completion, text, code or input_ids`, "d.json:4: want a JSON object, got a JSON number (5)"}},
		{"empty.json", "[]", ReadOptions{}, nil, nil},
		{"void.json", "", ReadOptions{}, nil, nil},
		{"one.json", `{"text":"a"}`, ReadOptions{}, []Row{{Kind: KindText, Source: "one.json:1", Text: "a"}}, nil},
		// .json holding JSON Lines, or pretty-printed objects one after another.
		{"lines.json", `{"text":"a"}` + "\n" + `{"text":"b"}` + "\n", ReadOptions{},
			[]Row{{Kind: KindText, Source: "lines.json:1", Text: "a"}, {Kind: KindText, Source: "lines.json:2", Text: "b"}}, nil},
		{"pretty.json", "{\n \"text\": \"a\"\n}\n{\n \"text\": \"b\"\n}\n", ReadOptions{},
			[]Row{{Kind: KindText, Source: "pretty.json:1", Text: "a"}, {Kind: KindText, Source: "pretty.json:4", Text: "b"}}, nil},
		// CSV: header keys, quoted multi-line cells, an empty cell is an absent key,
		// messages and input_ids cells hold JSON.
		{"d.csv", bom + "prompt,completion\r\nhi,there\r\n\"multi\nline\",\"say \"\"x\"\"\"\r\n,missing prompt\r\n", ReadOptions{},
			[]Row{{Kind: KindCompletion, Source: "d.csv:2", Prompt: "hi", Completion: "there"}, {Kind: KindCompletion, Source: "d.csv:3", Prompt: "multi\nline", Completion: `say "x"`}},
			[]string{`d.csv:5: no known keys (have "completion"); want messages, instruction/output, prompt/completion, text, code or input_ids (an empty cell is a missing key: "prompt")`}},
		{"chat.csv", "messages,text\n\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"q\"\"},{\"\"role\"\":\"\"assistant\"\",\"\"content\"\":\"\"a\"\"}]\",\nnot json,\n,plain\n", ReadOptions{},
			[]Row{{Kind: KindChat, Source: "chat.csv:2", Messages: []Message{{"user", "q"}, {"assistant", "a"}}}, {Kind: KindText, Source: "chat.csv:4", Text: "plain"}},
			[]string{`chat.csv:3: "messages": the cell is not valid JSON: not json`}},
		{"ids.csv", "input_ids,labels\n\"[1,2,3]\",\"[-100,2,3]\"\n", ReadOptions{},
			[]Row{{Kind: KindTokens, Source: "ids.csv:2", InputIDs: []int{1, 2, 3}, Labels: []int{-100, 2, 3}}}, nil},
		{"inst.tsv", "instruction\tinput\toutput\nadd\t1 2\t3\nsub\t\t0\n", ReadOptions{},
			[]Row{{Kind: KindInstruction, Source: "inst.tsv:2", Instruction: "add", Input: "1 2", Output: "3"}, {Kind: KindInstruction, Source: "inst.tsv:3", Instruction: "sub", Output: "0"}}, nil},
		{"mapped.csv", "body\nfn main() {}\n", ReadOptions{Fields: Fields{Text: "body"}},
			[]Row{{Kind: KindText, Source: "mapped.csv:2", Text: "fn main() {}"}}, nil},
		// Text files: the whole file is one text row.
		{"notes.md", bom + "# Title\n\nSome text.\n", ReadOptions{}, []Row{{Kind: KindText, Source: "notes.md:1", Text: "# Title\n\nSome text.\n"}}, nil},
		{"main.rs", "fn main() {\n    println!(\"hi\");\n}\n", ReadOptions{}, []Row{{Kind: KindText, Source: "main.rs:1", Text: "fn main() {\n    println!(\"hi\");\n}\n"}}, nil},
		{"blank.txt", " \n\n", ReadOptions{}, nil, []string{"blank.txt:1: the text file is empty"}},
		{"bin.txt", "ab\ncd\x00", ReadOptions{}, nil, []string{"bin.txt:1: not a text file: a NUL byte on line 2 (a JSONL, JSON, CSV or parquet file needs that extension)"}},
		{"latin1.txt", "caf\xe9\n", ReadOptions{}, nil, []string{"latin1.txt:1: not UTF-8 text: an invalid byte on line 1"}},
		// No extension, or .txt, starting with '{': JSON Lines, as before.
		{"rows", "\n" + `{"text":"a"}` + "\n", ReadOptions{}, []Row{{Kind: KindText, Source: "rows:2", Text: "a"}}, nil},
		{"rows.txt", `{"text":"a"}`, ReadOptions{}, []Row{{Kind: KindText, Source: "rows.txt:1", Text: "a"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.name, tc.content)
			rows, bad, err := ReadPath(ctx, p, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for i := range rows {
				rows[i].Source = filepath.Base(rows[i].Source)
			}
			if fmt.Sprintf("%+v", rows) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("rows\n%+v\nwant\n%+v", rows, tc.want)
			}
			var got []string
			for _, b := range bad {
				got = append(got, strings.TrimPrefix(b.Error(), filepath.Dir(p)+string(filepath.Separator)))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.bad) {
				t.Errorf("bad rows %q, want %q", got, tc.bad)
			}
		})
	}
}

func TestReadPathErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, content string
		opts          ReadOptions
		want          string
	}{
		{"d.json", `"text"`, ReadOptions{}, `a .json data file holds an array of row objects [{…}, …] or one object per line, got '"' first`},
		{"open.json", `[{"text":"a"}`, ReadOptions{}, "open.json:1: the array is not closed with ]"},
		{"comma.json", `[{"text":"a"} {"text":"b"}]`, ReadOptions{}, `comma.json:1: want , or ] after an array element, got '{'`},
		{"trailing.json", `[{"text":"a"},]`, ReadOptions{}, `trailing.json:1: want an array element, got ']'`},
		{"after.json", "[{\"text\":\"a\"}]\n[]", ReadOptions{}, "after.json:2: text after the array's closing ]"},
		// Objects one after another, then a stray closing brace: an error, not a loop
		// that reads nothing and counts bad rows forever.
		{"stray.json", "{\n\"text\":\"a\"}\n}\n{\"text\":\"b\"}", ReadOptions{}, "stray.json:3: want a row object, got '}'"},
		{"unclosed.json", "[\n{\"text\":\"a\"", ReadOptions{}, "unclosed.json:2: the array element that starts here is not closed"},
		{"big.json", "[\n" + `{"text":"` + strings.Repeat("x", 100) + `"}]`, ReadOptions{MaxLineBytes: 50}, "big.json:2: array element longer than the limit of 50 bytes"},
		{"big.csv", "text\nshort\n\"" + strings.Repeat("x\n", 100<<10) + "\"\n", ReadOptions{MaxLineBytes: 1 << 10}, "big.csv:3: CSV record longer than the limit of 1 KiB"},
		{"big.txt", strings.Repeat("x", 2000), ReadOptions{MaxLineBytes: 1000}, "big.txt:1: text file longer than the limit of 1000 bytes"},
		{"cols.csv", "a,b\n1,2\n", ReadOptions{}, `cols.csv:1: the header names no known column (have "a", "b")`},
		{"strict.json", `[{"text":"a"},{"text":5}]`, ReadOptions{Strict: true}, `strict.json:1: "text": want a string, got a JSON number (5)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.name, tc.content)
			_, _, err := ReadPath(ctx, p, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, _, err := ReadPath(ctx, filepath.Join(t.TempDir(), "missing.jsonl"), ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// The same rows in every format read the same.
func TestReadPathFormatsAgree(t *testing.T) {
	jsonl := `{"prompt":"a,b","completion":"line1\nline2 \"q\""}` + "\n" + `{"text":"t"}` + "\n"
	array := "[" + strings.ReplaceAll(strings.TrimSpace(jsonl), "\n", ",") + "]"
	csv := "prompt,completion,text\n\"a,b\",\"line1\nline2 \"\"q\"\"\",\n,,t\n"
	var want string
	for i, f := range []struct{ name, content string }{{"d.jsonl", jsonl}, {"d.json", array}, {"d.csv", csv}} {
		rows, bad, err := ReadPath(context.Background(), writeFile(t, f.name, f.content), ReadOptions{Strict: true})
		if err != nil || len(bad) > 0 || len(rows) != 2 {
			t.Fatalf("%s: rows %d bad %v err %v", f.name, len(rows), bad, err)
		}
		for i := range rows {
			rows[i].Source = ""
		}
		got := fmt.Sprintf("%+v", rows)
		if i == 0 {
			want = got
		} else if got != want {
			t.Errorf("%s: %s\nwant %s", f.name, got, want)
		}
	}
}

// Error messages are whole sentences: the JSON kind that was found, where it was.
func TestParseRowMessages(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"messages":"hi"}`, `"messages": want a list of {"role":…, "content":…} objects, got a JSON string ("hi")`},
		{`{"messages":[{"role":"user","content":5}]}`, `"messages"[0].content: want a string, got a JSON number (5)`},
		{`{"messages":[{"role":"user","content":"q"},"a"]}`, `"messages"[1]: want a {"role":…, "content":…} object, got a JSON string ("a")`},
		{`[1,2]`, `want a JSON object, got a JSON array ([1,2])`},
		{`{"input_ids":"1 2"}`, `"input_ids": want a list of integers, got a JSON string ("1 2")`},
		{`{"input_ids":[1,2.5]}`, `"input_ids"[1]: want an integer, got a JSON number (2.5)`},
		{`{"input_ids":[1],"labels":[true]}`, `"labels"[0]: want an integer, got a JSON boolean (true)`},
		{`{}`, `no known keys (have none)`},
		{`{"b":1,"a":2}`, `no known keys (have "b", "a")`},
		{`{"text":"a"`, `invalid JSON: unexpected end of JSON input`},
	} {
		_, err := ParseRow([]byte(tc.json), Fields{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.json, err, tc.want)
		}
		if err != nil && strings.HasSuffix(err.Error(), " at ") {
			t.Errorf("%s: unfinished message %q", tc.json, err)
		}
	}
	// A null content is empty (a tool-calling assistant turn), extra keys are ignored.
	row, err := ParseRow([]byte(`{"messages":[{"role":"user","content":"q","name":"x"},{"role":"assistant","content":null},{"role":"assistant","content":"a"}]}`), Fields{})
	if err != nil || len(row.Messages) != 3 || row.Messages[1].Content != "" || row.Messages[2].Content != "a" {
		t.Fatalf("row %+v err %v", row, err)
	}
}

// decodeString agrees with encoding/json on every valid JSON string: escapes,
// surrogate pairs, lone surrogates and invalid UTF-8 (both become U+FFFD).
func TestDecodeStringMatchesEncodingJSON(t *testing.T) {
	pieces := []string{"a", "é", "日本", "😀", `\n`, `\t`, `\"`, `\\`, `\/`, `\b`, `\f`, `\r`, `\u00e9`, `\u65e5`,
		`\ud83d\ude00`, `\ud83d`, `\ude00`, `\ud83dx`, `\u0000`, "\xff", "\xc3", "\xe6\x97", " ", "\x7f"}
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []string{`""`, `"plain"`}
	for range 3000 {
		var b strings.Builder
		b.WriteByte('"')
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		b.WriteByte('"')
		cases = append(cases, b.String())
	}
	for _, c := range cases {
		var want string
		if err := json.Unmarshal([]byte(c), &want); err != nil {
			continue // not valid JSON (a raw control byte)
		}
		got, err := decodeString([]byte(c))
		if err != nil || got != want {
			t.Fatalf("%q: got %q, %v; want %q", c, got, err, want)
		}
	}
}

func TestReadPathGzip(t *testing.T) {
	ctx := context.Background()
	for _, f := range []struct{ name, content string }{
		{"d.jsonl.gz", `{"text":"a"}` + "\n" + `{"text":"b"}` + "\n"},
		{"d.csv.gz", "text\na\nb\n"},
		{"d.json.gz", `[{"text":"a"},{"text":"b"}]`},
	} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(f.content))
		zw.Close()
		p := writeFile(t, f.name, buf.String())
		rows, bad, err := ReadPath(ctx, p, ReadOptions{})
		if err != nil || len(bad) > 0 || len(rows) != 2 || rows[1].Text != "b" {
			t.Errorf("%s: rows %+v bad %v err %v", f.name, rows, bad, err)
		}
	}
	if _, _, err := ReadPath(ctx, writeFile(t, "plain.jsonl.gz", `{"text":"a"}`), ReadOptions{}); err == nil || !strings.Contains(err.Error(), "not a gzip file") {
		t.Errorf("not gzip: %v", err)
	}
	if _, _, err := ReadPath(ctx, writeFile(t, "d.jsonl.zst", "x"), ReadOptions{}); err == nil || !strings.Contains(err.Error(), "zst-compressed data is not read") {
		t.Errorf("zstd: %v", err)
	}
}
