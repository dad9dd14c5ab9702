package dataset

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// ReadParquet reads rows from a parquet file (the format HF datasets are served in).
// Each record is parsed as a JSONL row would be (string columns as strings, others as
// their JSON form), so the same row kinds, column mapping (opts.Fields) and bad-row
// handling apply; a row's source is "file.parquet:row N" (N from 1).
func ReadParquet(path string, opts ReadOptions) (rows []Row, bad []BadRow, err error) {
	// The parquet library panics on some damaged files (slice bounds in its page
	// index reader, found by fuzzing): a user's file must give an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			rows, bad, err = nil, nil, fmt.Errorf("%s: not a readable parquet file (the parquet reader failed: %v)", path, r)
		}
	}()
	ctx := opts.Context
	f, err := openData(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("reading data: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: a parquet file must be a regular file (it is read at random offsets), not a pipe or device", path)
	}
	if err := checkParquetFooter(f, fi.Size()); err != nil {
		return nil, nil, fmt.Errorf("%s: not a readable parquet file: %w", path, err)
	}
	pf, err := parquet.OpenFile(f, fi.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a readable parquet file: %w", path, err)
	}
	if err := checkParquetPages(f, fi.Size(), pf.Metadata()); err != nil {
		return nil, nil, fmt.Errorf("%s: not a readable parquet file: %w", path, err)
	}
	r := parquet.NewGenericReader[map[string]any](pf, pf.Schema())
	defer r.Close()
	buf := make([]map[string]any, 256)
	n := 0
	rs := rowSink{opts: opts}
	for {
		if ctx != nil && ctx.Err() != nil {
			return rs.rows, rs.bad, ctx.Err()
		}
		for i := range buf {
			buf[i] = map[string]any{}
		}
		k, rerr := r.Read(buf)
		for _, rec := range buf[:k] {
			n++
			obj, perr := recordMembers(rec)
			var row Row
			if perr == nil {
				row, perr = parseMembers(obj, opts.Fields)
			}
			if done, err := rs.add(row, perr, fmt.Sprintf("%s:row %d", path, n)); done || err != nil {
				return rs.rows, rs.bad, err
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return rs.rows, rs.bad, nil
			}
			return rs.rows, rs.bad, fmt.Errorf("%s after row %d: %w", path, n, rerr)
		}
	}
}

// recordMembers turns a parquet record into row members: strings (and byte arrays) as
// text, null as JSON null, anything else (lists of messages or ids) as its JSON form.
// Columns come in name order.
func recordMembers(rec map[string]any) (members, error) {
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	obj := make(members, 0, len(rec))
	for _, k := range keys {
		switch v := rec[k].(type) {
		case string:
			obj = append(obj, member{key: k, val: value{text: v, isText: true}})
		case []byte:
			obj = append(obj, member{key: k, val: value{text: string(v), isText: true}})
		default:
			raw, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("column %q: %v", k, err)
			}
			obj = append(obj, member{key: k, val: value{raw: raw}})
		}
	}
	return obj, nil
}

// checkParquetFooter checks the file's trailer (footer length, then "PAR1") before the
// parquet reader trusts it: the reader allocates the footer length it reads, so a
// damaged or hostile file could otherwise ask for gigabytes.
func checkParquetFooter(f io.ReaderAt, size int64) error {
	const magic = "PAR1"
	if size < 12 {
		return fmt.Errorf("%d bytes is too short for a parquet file", size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(tail[4:]) != magic {
		return fmt.Errorf("no %s magic at the end", magic)
	}
	footer := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footer > size-12 {
		return fmt.Errorf("footer of %d bytes in a file of %d bytes", footer, size)
	}
	return nil
}

// Bounds on what a parquet page may declare: the reader allocates a page's sizes
// before it reads it, so a damaged or hostile header could otherwise ask for
// gigabytes (found by fuzzing).
const (
	maxParquetPage      = 1 << 30 // uncompressed bytes of one page
	maxParquetInflation = 2000    // uncompressed / compressed: beyond is a bomb, not text
)

// checkParquetPages walks every column chunk's page headers and checks that each page
// lies inside its chunk, each chunk inside the file, and that no page inflates beyond
// the bounds above.
func checkParquetPages(f io.ReaderAt, size int64, md *format.FileMetaData) error {
	for g, rg := range md.RowGroups {
		for c, cc := range rg.Columns {
			m := cc.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			end := start + m.TotalCompressedSize
			if start < 4 || m.TotalCompressedSize < 0 || end > size || end < start {
				return fmt.Errorf("row group %d column %d: pages at [%d, %d) outside the file of %d bytes", g, c, start, end, size)
			}
			for off := start; off < end; {
				h, hlen, err := readPageHeader(f, off, end)
				if err != nil {
					return fmt.Errorf("row group %d column %d: page header at %d: %w", g, c, off, err)
				}
				comp, unc := int64(h.CompressedPageSize), int64(h.UncompressedPageSize)
				next := off + hlen + comp
				if comp < 0 || unc < 0 || next > end {
					return fmt.Errorf("row group %d column %d: page at %d declares %d bytes, beyond its column chunk", g, c, off, comp)
				}
				if unc > maxParquetPage || unc > maxParquetInflation*comp+(1<<20) {
					return fmt.Errorf("row group %d column %d: page at %d declares %d uncompressed bytes from %d", g, c, off, unc, comp)
				}
				off = next
			}
		}
	}
	return nil
}

// readPageHeader decodes the page header at off from the bytes themselves (thrift's
// stream reader allocates a declared length before reading it; the bytes reader
// slices), in a window that grows until the header fits, up to the chunk's end.
func readPageHeader(f io.ReaderAt, off, end int64) (*format.PageHeader, int64, error) {
	for window := int64(64 << 10); ; window *= 4 {
		n := min(window, end-off)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return nil, 0, err
		}
		r := (&thrift.CompactProtocol{}).NewReaderFromBytes(buf)
		var h format.PageHeader
		err := thrift.NewDecoder(r).Decode(&h)
		if err == nil {
			read, ok := r.(interface{ BytesRead() int })
			if !ok {
				return nil, 0, fmt.Errorf("cannot measure the header")
			}
			return &h, int64(read.BytesRead()), nil
		}
		if n == end-off || window >= 64<<20 {
			return nil, 0, err
		}
	}
}
