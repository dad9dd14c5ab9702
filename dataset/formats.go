package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Format is a data file format.
type Format string

const (
	FormatJSONL   Format = "jsonl"   // one row object per line
	FormatJSON    Format = "json"    // a top-level array of row objects (JSON Lines also accepted)
	FormatCSV     Format = "csv"     // a header naming the row keys, one row per record
	FormatTSV     Format = "tsv"     // CSV with tabs
	FormatParquet Format = "parquet" // HF datasets' format, columns named like the row keys
	FormatText    Format = "text"    // the whole file is one text row
)

// FormatOf picks the format of a data file by its extension (case-insensitive):
//
//	.jsonl .ndjson .jsonlines   JSONL
//	.json                       a JSON array of rows, or JSONL when the file starts with '{'
//	.csv .tsv                   CSV / TSV with a header row
//	.parquet                    parquet
//
// Any other file (.txt, .md, source code, no extension) is "" here and is read as JSONL
// when its first non-blank character is '{', else as one text row. ReadPath also reads
// these gzipped (a further .gz), parquet excepted.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson", ".jsonlines":
		return FormatJSONL
	case ".json":
		return FormatJSON
	case ".csv":
		return FormatCSV
	case ".tsv":
		return FormatTSV
	case ".parquet":
		return FormatParquet
	}
	return ""
}

// ReadPath reads a data file in the format its name says (FormatOf): the one entry
// point for training and evaluation data. ctx (which may be nil) cancels the read, as
// ReadOptions.Context does. Every row's Source is file:line (file:row N for parquet).
//
// CSV and TSV: the header names the columns with the JSONL keys (text or code;
// prompt, completion; instruction, input, output; messages; input_ids, labels; or the
// names of opts.Fields). Cells are strings, except messages (a JSON list of
// {"role","content"} objects), input_ids and labels (JSON lists of integers). An empty
// cell is an absent key. Other columns are ignored.
//
// Text: the whole file, up to MaxLineBytes, is one {"text": …} row; it must be UTF-8
// without NUL bytes. A UTF-8 byte order mark at the start of any text format is ignored.
func ReadPath(ctx context.Context, path string, opts ReadOptions) (rows []Row, bad []BadRow, err error) {
	if ctx != nil {
		opts.Context = ctx
	}
	format := FormatOf(path)
	inner := strings.ToLower(filepath.Ext(path))
	gzipped := inner == ".gz"
	if gzipped {
		format = FormatOf(strings.TrimSuffix(path, filepath.Ext(path)))
	}
	switch {
	case format == FormatParquet && !gzipped:
		return ReadParquet(path, opts)
	case format == FormatParquet:
		return nil, nil, fmt.Errorf("%s: a parquet file cannot be read gzipped; decompress it (parquet compresses its own columns)", path)
	case inner == ".bz2" || inner == ".xz" || inner == ".zst" || inner == ".zip" || inner == ".7z":
		return nil, nil, fmt.Errorf("%s: %s-compressed data is not read; decompress it first (gzip, .gz, is read as is)", path, inner[1:])
	}
	f, err := openData(opts.Context, path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var r io.Reader = f
	var stop func()
	r, stop = readerWithContext(opts.Context, r)
	defer stop()
	if gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			if isCancel(err) {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("%s: not a gzip file: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	br := bufio.NewReaderSize(r, min(lineBufSize, opts.maxLine()+1))
	if b, _ := br.Peek(3); bytes.Equal(b, utf8BOM) {
		br.Discard(3)
	}
	stream := false
	if format == FormatJSON || format == "" {
		first, err := firstByte(br)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", path, err)
		}
		switch {
		case first == 0 && format == FormatJSON:
			return nil, nil, nil // an empty file: no rows, as an empty JSONL file
		case first == '{' && format == FormatJSON && !firstLineIsJSON(br):
			stream = true // pretty-printed objects, one after another
		case first == '{':
			format = FormatJSONL
		case format == FormatJSON:
			if first != '[' {
				return nil, nil, fmt.Errorf("%s: a .json data file holds an array of row objects [{…}, …] or one object per line, got %s", path, describeStart(first))
			}
		default:
			format = FormatText
		}
	}
	switch format {
	case FormatJSONL:
		return readJSONL(br, path, opts)
	case FormatJSON:
		return readJSONArray(br, path, stream, opts)
	case FormatCSV, FormatTSV:
		return readCSV(br, path, format == FormatTSV, opts)
	}
	var size int64 = -1
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && !gzipped {
		size = fi.Size()
	}
	return readText(br, path, size, opts)
}

func describeStart(c byte) string {
	if c == 0 {
		return "an empty file"
	}
	if c < utf8.RuneSelf && c >= ' ' {
		return fmt.Sprintf("%q first", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x first", c)
}

// firstByte is the first byte after blanks, 0 for an empty file. It only peeks (line
// numbers stay right), at most one buffer ahead, and waits for no more input than it
// needs (a pipe).
func firstByte(br *bufio.Reader) (byte, error) {
	for n, from := 64, 0; ; n *= 2 {
		n = min(n, br.Size())
		b, err := br.Peek(n)
		for _, c := range b[from:] {
			switch c {
			case ' ', '\t', '\r', '\n':
			default:
				return c, nil
			}
		}
		from = len(b)
		if err == io.EOF || (err == nil && len(b) == br.Size()) {
			return 0, nil // empty, or a buffer of blanks
		}
		if err != nil && err != bufio.ErrBufferFull {
			return 0, err
		}
	}
}

// readJSONL reads JSONL rows from an already context-aware reader.
func readJSONL(r io.Reader, name string, opts ReadOptions) ([]Row, []BadRow, error) {
	ctx := opts.Context
	lr := NewLineReader(r, name, opts.maxLine())
	rs := rowSink{opts: opts}
	for {
		if ctx != nil && ctx.Err() != nil {
			return rs.rows, rs.bad, ctx.Err()
		}
		data, rerr := lr.Next()
		if rerr == io.EOF {
			return rs.rows, rs.bad, nil
		}
		if rerr != nil {
			return rs.rows, rs.bad, rerr
		}
		if lr.Line() == 1 {
			data = bytes.TrimPrefix(data, utf8BOM)
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		row, perr := ParseRow(data, opts.Fields)
		if done, err := rs.add(row, perr, fmt.Sprintf("%s:%d", name, lr.Line())); done || err != nil {
			return rs.rows, rs.bad, err
		}
	}
}

// firstLineIsJSON reports whether the first line is a whole JSON value: then the file
// is JSON Lines. It peeks as far as the first newline (a first line longer than the
// buffer counts as JSON Lines: it is no pretty-printed object).
func firstLineIsJSON(br *bufio.Reader) bool {
	for n, from := 256, 0; ; n *= 2 {
		n = min(n, br.Size())
		b, err := br.Peek(n)
		if i := bytes.IndexByte(b[from:], '\n'); i >= 0 {
			return json.Valid(b[:from+i])
		}
		if err != nil || len(b) == br.Size() {
			return err != nil && json.Valid(b) || len(b) == br.Size()
		}
		from = len(b)
	}
}

// readJSONArray reads a top-level JSON array of row objects, one element at a time: an
// element costs its own size (at most MaxLineBytes), the file any size. An element that
// is not a valid row object is a bad row named by the line it starts on; a broken array
// (a missing comma, text after the closing bracket) is an error. With stream, the file
// is JSON values one after another (pretty-printed objects) instead of an array.
func readJSONArray(br *bufio.Reader, name string, stream bool, opts ReadOptions) ([]Row, []BadRow, error) {
	ctx := opts.Context
	limit := opts.maxLine()
	rs := rowSink{opts: opts}
	line := 1
	// next returns the next non-blank byte, counting lines; 0 at the end.
	next := func() (byte, error) {
		for {
			c, err := br.ReadByte()
			if err == io.EOF {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			switch c {
			case '\n':
				line++
			case ' ', '\t', '\r':
			default:
				return c, nil
			}
		}
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	if !stream {
		c, err := next()
		if err != nil {
			return nil, nil, err
		}
		if c != '[' {
			return nil, nil, fail("want a JSON array of row objects")
		}
	}
	var elem []byte
	for n := 0; ; n++ {
		if ctx != nil && ctx.Err() != nil {
			return rs.rows, rs.bad, ctx.Err()
		}
		c, err := next()
		switch {
		case err != nil:
			return rs.rows, rs.bad, err
		case stream && c == 0:
			return rs.rows, rs.bad, nil
		case c == ']' && n == 0 && !stream:
			return rs.rows, rs.bad, trailing(next, fail)
		case c == 0:
			return rs.rows, rs.bad, fail("the array is not closed with ]")
		case c == ',' || c == ']':
			return rs.rows, rs.bad, fail("want an array element, got %q", rune(c))
		}
		start := line
		if err := br.UnreadByte(); err != nil {
			return rs.rows, rs.bad, err
		}
		elem, err = readJSONValue(br, elem[:0], limit, &line)
		if err != nil {
			var tl *TooLongError
			if errors.As(err, &tl) {
				tl.Source = fmt.Sprintf("%s:%d", name, start)
				return rs.rows, rs.bad, tl
			}
			if err == io.ErrUnexpectedEOF {
				return rs.rows, rs.bad, fmt.Errorf("%s:%d: the array element that starts here is not closed", name, start)
			}
			return rs.rows, rs.bad, err
		}
		if len(elem) == 0 { // a closing } or ] where a value should start: nothing was read
			return rs.rows, rs.bad, fail("want a row object, got %q", rune(c))
		}
		row, perr := ParseRow(elem, opts.Fields)
		if done, err := rs.add(row, perr, fmt.Sprintf("%s:%d", name, start)); done || err != nil {
			return rs.rows, rs.bad, err
		}
		if cap(elem) > 4*lineBufSize {
			elem = nil // do not keep a huge element's buffer for the next ones
		}
		if stream {
			continue
		}
		switch c, err := next(); {
		case err != nil:
			return rs.rows, rs.bad, err
		case c == ',':
		case c == ']':
			return rs.rows, rs.bad, trailing(next, fail)
		case c == 0:
			return rs.rows, rs.bad, fail("the array is not closed with ]")
		default:
			return rs.rows, rs.bad, fail("want , or ] after an array element, got %q", rune(c))
		}
	}
}

// trailing checks that nothing but blanks follows the array.
func trailing(next func() (byte, error), fail func(string, ...any) error) error {
	c, err := next()
	if err != nil {
		return err
	}
	if c != 0 {
		return fail("text after the array's closing ]")
	}
	return nil
}

// readJSONValue appends the bytes of the JSON value at the reader to dst: an object or
// array up to its matching bracket (strings skipped), a string, or a scalar up to the
// next delimiter. It only finds the value's extent; ParseRow validates it.
func readJSONValue(br *bufio.Reader, dst []byte, limit int, line *int) ([]byte, error) {
	depth, inString, escaped := 0, false, false
	for {
		buf, _ := br.Peek(br.Buffered()) // never fails: the bytes are buffered
		if len(buf) == 0 {
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					if depth == 0 && !inString && len(dst) > 0 {
						return dst, nil // a scalar at the very end
					}
					return dst, io.ErrUnexpectedEOF
				}
				return dst, err
			}
			continue
		}
		i := 0
		done := false
	scan:
		for ; i < len(buf); i++ {
			c := buf[i]
			if c == '\n' {
				*line++
			}
			if inString {
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
					if depth == 0 {
						i++
						done = true
						break scan
					}
				}
				continue
			}
			switch c {
			case '"':
				inString = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 { // the end of a scalar: the array's ]
					done = true
					break scan
				}
				depth--
				if depth == 0 {
					i++
					done = true
					break scan
				}
			case ',', ' ', '\t', '\r', '\n':
				if depth == 0 {
					if c == '\n' {
						*line-- // counted again by the caller
					}
					done = true
					break scan
				}
			}
		}
		if len(dst)+i > limit {
			return dst, &TooLongError{What: "array element", Limit: limit}
		}
		dst = append(dst, buf[:i]...)
		br.Discard(i)
		if done {
			return dst, nil
		}
	}
}

// budgetReader fails with errRecordTooLong once more than left bytes are read; the CSV
// reader resets left after every record.
type budgetReader struct {
	r    io.Reader
	left int
}

var errRecordTooLong = errors.New("record too long")

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errRecordTooLong
	}
	n, err := b.r.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

// jsonColumns are the CSV columns whose cells hold JSON.
func jsonColumn(name string, fields Fields) bool {
	switch name {
	case "messages", "input_ids", "labels":
		return true
	}
	return fields.Messages != "" && name == fields.Messages
}

// knownColumn reports whether a column names a row key.
func knownColumn(c string, fields Fields) bool {
	switch c {
	case "":
		return false
	case "messages", "instruction", "input", "output", "prompt", "completion", "text", "code", "input_ids", "labels",
		fields.Messages, fields.Prompt, fields.Completion, fields.Text:
		return true
	}
	return false
}

// readCSV reads a CSV (or TSV) file with a header row.
func readCSV(br *bufio.Reader, name string, tabs bool, opts ReadOptions) ([]Row, []BadRow, error) {
	ctx := opts.Context
	limit := opts.maxLine()
	// The budget covers a record plus what the CSV reader's own buffer reads ahead.
	const readAhead = 64 << 10
	budget := &budgetReader{r: br, left: limit + readAhead}
	cr := csv.NewReader(budget)
	if tabs {
		cr.Comma = '\t'
	}
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, csvError(err, name, 1, limit)
	}
	cols := make([]string, len(header))
	known := false
	for i, h := range header {
		cols[i] = strings.TrimSpace(h)
		known = known || knownColumn(cols[i], opts.Fields)
	}
	if !known {
		return nil, nil, fmt.Errorf("%s:1: the header names no known column (have %s); want messages, instruction/output, prompt/completion, text, code or input_ids",
			name, strings.Join(quoteAll(cols), ", "))
	}
	rs := rowSink{opts: opts}
	line := 1 // of the last record read
	for {
		if ctx != nil && ctx.Err() != nil {
			return rs.rows, rs.bad, ctx.Err()
		}
		budget.left = limit + readAhead
		rec, err := cr.Read()
		if err == io.EOF {
			return rs.rows, rs.bad, nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if pe.StartLine > line {
				line = pe.StartLine
			} else {
				line++
			}
			reason := fmt.Errorf("column %d: %v", pe.Column, pe.Err)
			if done, err := rs.add(Row{}, reason, fmt.Sprintf("%s:%d", name, line)); done || err != nil {
				return rs.rows, rs.bad, err
			}
			continue
		}
		if err != nil {
			return rs.rows, rs.bad, csvError(err, name, line+1, limit)
		}
		line, _ = cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		var obj members
		var perr error
		if len(rec) != len(cols) {
			perr = fmt.Errorf("%d fields, the header has %d", len(rec), len(cols))
		}
		for i := 0; i < len(rec) && i < len(cols) && perr == nil; i++ {
			cell := rec[i]
			if cell == "" || cols[i] == "" {
				continue
			}
			if jsonColumn(cols[i], opts.Fields) {
				raw := []byte(cell)
				if !json.Valid(raw) {
					perr = fmt.Errorf("%q: the cell is not valid JSON: %s", cols[i], abbreviate(raw))
					break
				}
				obj = append(obj, member{key: cols[i], val: value{raw: raw}})
			} else {
				obj = append(obj, member{key: cols[i], val: value{text: cell, isText: true}})
			}
		}
		var row Row
		if perr == nil {
			if row, perr = parseMembers(obj, opts.Fields); perr != nil {
				var empty []string
				for i, c := range cols {
					if i < len(rec) && rec[i] == "" && knownColumn(c, opts.Fields) {
						empty = append(empty, fmt.Sprintf("%q", c))
					}
				}
				if len(empty) > 0 {
					perr = fmt.Errorf("%w (an empty cell is a missing key: %s)", perr, strings.Join(empty, ", "))
				}
			}
		}
		if done, err := rs.add(row, perr, fmt.Sprintf("%s:%d", name, line)); done || err != nil {
			return rs.rows, rs.bad, err
		}
	}
}

func csvError(err error, name string, line, limit int) error {
	if errors.Is(err, errRecordTooLong) {
		return &TooLongError{Source: fmt.Sprintf("%s:%d", name, line), What: "CSV record", Limit: limit}
	}
	if isCancel(err) {
		return err
	}
	return fmt.Errorf("%s:%d: %w", name, line, err)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// readText reads the whole file as one text row; size is its size when known (-1).
func readText(br *bufio.Reader, name string, size int64, opts ReadOptions) ([]Row, []BadRow, error) {
	limit := opts.maxLine()
	var b strings.Builder
	if size >= 0 {
		b.Grow(int(min(size, int64(limit)+1)))
	}
	n, err := io.Copy(&b, io.LimitReader(br, int64(limit)+1))
	if err != nil {
		if isCancel(err) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if n > int64(limit) {
		return nil, nil, &TooLongError{Source: name + ":1", What: "text file", Limit: limit}
	}
	text := strings.TrimPrefix(b.String(), "\uFEFF")
	rs := rowSink{opts: opts}
	var perr error
	switch {
	case strings.IndexByte(text, 0) >= 0:
		at := strings.IndexByte(text, 0)
		perr = fmt.Errorf("not a text file: a NUL byte on line %d (a JSONL, JSON, CSV or parquet file needs that extension)", 1+strings.Count(text[:at], "\n"))
	case !utf8.ValidString(text):
		perr = fmt.Errorf("not UTF-8 text: an invalid byte on line %d", 1+strings.Count(text[:invalidUTF8At(text)], "\n"))
	case strings.TrimSpace(text) == "":
		perr = errors.New("the text file is empty")
	}
	_, err = rs.add(Row{Kind: KindText, Text: text}, perr, name+":1")
	return rs.rows, rs.bad, err
}

func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}
