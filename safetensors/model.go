package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bidora/bidora/internal/metafile"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bidora/bidora/internal/atomicfile"
)

// Standard file names of a HuggingFace model directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Model is the set of safetensors files of a model directory: one
// model.safetensors, or the shards listed by model.safetensors.index.json.
type Model struct {
	dir    string
	files  []*File
	where  map[string]*File
	names  []string // sorted
	meta   map[string]any
	closed bool
}

// Index is the content of model.safetensors.index.json.
type Index struct {
	Metadata  map[string]any    `json:"metadata,omitempty"`
	WeightMap map[string]string `json:"weight_map"`
}

// ReadIndex reads and checks a model.safetensors.index.json file: every shard
// name must be a plain file name in the same directory.
func ReadIndex(path string) (*Index, error) {
	data, err := metafile.Read(path, metafile.MaxJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("reading safetensors index: %w", err)
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: weight_map is missing or empty", path)
	}
	for name, shard := range idx.WeightMap {
		if shard == "" || shard != filepath.Base(shard) || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			return nil, fmt.Errorf("%s: weight_map[%q] = %q is not a file name in the model directory", path, name, shard)
		}
	}
	return &idx, nil
}

// OpenDir opens the weights of a model directory: model.safetensors.index.json
// and its shards when the index exists, else model.safetensors.
func OpenDir(dir string) (*Model, error) {
	indexPath := filepath.Join(dir, IndexFileName)
	if _, err := os.Stat(indexPath); err == nil {
		return openSharded(dir, indexPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("opening model weights: %w", err)
	}
	single := filepath.Join(dir, SingleFileName)
	f, err := Open(single)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s or %s", dir, SingleFileName, IndexFileName)
		}
		return nil, err
	}
	m := &Model{dir: dir, files: []*File{f}, where: map[string]*File{}, names: f.Names()}
	for _, n := range m.names {
		m.where[n] = f
	}
	return m, nil
}

func openSharded(dir, indexPath string) (*Model, error) {
	idx, err := ReadIndex(indexPath)
	if err != nil {
		return nil, err
	}
	m := &Model{dir: dir, where: make(map[string]*File, len(idx.WeightMap)), meta: idx.Metadata}
	byShard := map[string]*File{}
	shards := make([]string, 0)
	for _, s := range idx.WeightMap {
		if _, ok := byShard[s]; !ok {
			byShard[s] = nil
			shards = append(shards, s)
		}
	}
	sort.Strings(shards)
	for _, s := range shards {
		f, err := Open(filepath.Join(dir, s))
		if err != nil {
			_ = m.Close()
			return nil, fmt.Errorf("%s lists shard %s: %w", indexPath, s, err)
		}
		byShard[s] = f
		m.files = append(m.files, f)
	}
	for name, s := range idx.WeightMap {
		f := byShard[s]
		if _, ok := f.infos[name]; !ok {
			_ = m.Close()
			return nil, fmt.Errorf("%s maps tensor %q to %s, which does not contain it", indexPath, name, s)
		}
		m.where[name] = f
		m.names = append(m.names, name)
	}
	sort.Strings(m.names)
	return m, nil
}

// Dir is the model directory.
func (m *Model) Dir() string { return m.dir }

// Files lists the open files (shards in name order).
func (m *Model) Files() []*File { return slices.Clone(m.files) }

// IndexMetadata is the "metadata" object of the index (nil for a single file).
func (m *Model) IndexMetadata() map[string]any { return m.meta }

// Names lists all tensor names in sorted order.
func (m *Model) Names() []string { return slices.Clone(m.names) }

func (m *Model) file(name string) (*File, error) {
	if m.closed {
		return nil, fmt.Errorf("%s: model is closed", m.dir)
	}
	f, ok := m.where[name]
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", m.dir, name)
	}
	return f, nil
}

// Info describes the named tensor.
func (m *Model) Info(name string) (TensorInfo, bool) {
	f, err := m.file(name)
	if err != nil {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Bytes returns the named tensor's raw bytes without copying (see File.Bytes).
func (m *Model) Bytes(name string) ([]byte, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, err
	}
	return f.Bytes(name)
}

// Float32 returns the named tensor as float32 (see File.Float32).
func (m *Model) Float32(name string) ([]float32, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, err
	}
	return f.Float32(name)
}

// BF16 returns the named tensor as bfloat16 bits (see File.BF16).
func (m *Model) BF16(name string) ([]uint16, error) {
	f, err := m.file(name)
	if err != nil {
		return nil, err
	}
	return f.BF16(name)
}

// Close closes every file; views returned earlier become invalid.
func (m *Model) Close() error {
	m.closed = true
	var errs []error
	for _, f := range m.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.files = nil
	return errors.Join(errs...)
}

// ShardFileName is the HuggingFace name of shard i (1-based) of n.
func ShardFileName(i, n int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n)
}

// WriteShards writes shards[i] to dir/ShardFileName(i+1, len(shards)) and the
// matching model.safetensors.index.json (metadata.total_size and weight_map),
// each file atomically. metadata goes into every shard's header.
func WriteShards(dir string, shards [][]Tensor, metadata map[string]string) error {
	idx := Index{Metadata: map[string]any{}, WeightMap: map[string]string{}}
	var total int64
	for i, shard := range shards {
		name := ShardFileName(i+1, len(shards))
		for _, t := range shard {
			if prev, ok := idx.WeightMap[t.Name]; ok {
				return fmt.Errorf("writing shards in %s: tensor %q is in both %s and %s", dir, t.Name, prev, name)
			}
			idx.WeightMap[t.Name] = name
			total += int64(len(t.Data))
		}
		if err := WriteFile(filepath.Join(dir, name), shard, metadata); err != nil {
			return err
		}
	}
	idx.Metadata["total_size"] = total
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("writing %s: %w", IndexFileName, err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, IndexFileName), append(data, '\n'))
}
