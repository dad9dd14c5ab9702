// Package merge folds a PEFT LoRA or DoRA adapter into the weights of its
// base model and writes a complete HuggingFace model directory: config.json
// (torch_dtype set to the output dtype), the tokenizer and generation files,
// and the weights as model.safetensors or as shards with
// model.safetensors.index.json.
//
// For each adapted projection W [out, in]:
//
//	LoRA  W' = W + s·B·A                       s = alpha/r, or alpha/√r with rsLoRA
//	DoRA  W' = (m / ‖W + s·B·A‖_row) ⊙ (W + s·B·A)
//
// computed in float32 from the stored dtype (the DoRA row norm in float64),
// with rank and alpha patterns resolved per module. Biases and every other
// tensor are copied unchanged (converted when the output dtype differs).
//
// Merging streams: the base is memory-mapped and read one tensor at a time,
// each output shard is written through a streaming writer, and the mapped
// pages of a tensor are released once it is written, so peak memory stays
// near the largest single tensor rather than the model.
//
// Output: the output directory is locked (atomicfile.LockDir) for the whole
// merge, every file is written in full and synced in a temporary directory
// inside it, and only then are the files renamed into place, config.json last.
// Merge replaces only the files it writes (and weight files of an earlier
// merge that the new layout no longer has); anything else in the output
// directory is left alone. An output that is, contains or lies inside the
// base or adapter directory is refused (*OverlapError).
package merge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bidora/bidora/internal/metafile"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bidora/bidora/internal/atomicfile"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/safetensors"
)

// Options controls Merge.
type Options struct {
	// DType of the written weights: safetensors.F32, F16 or BF16. Empty keeps
	// the base's stored dtype (or its config torch_dtype when the stored
	// weights mix dtypes).
	DType safetensors.DType
	// MaxShardSize bounds each output file's tensor data in bytes (0 means
	// DefaultMaxShardSize). A tensor larger than the bound gets a shard of its own.
	MaxShardSize int64
	// Overwrite allows merging into a non-empty output directory: the files
	// Merge writes are replaced, every other file is kept.
	Overwrite bool
	// Progress, if not nil, is called after each tensor is written.
	Progress func(done, total int)
}

// Result describes a finished merge.
type Result struct {
	Output    string            `json:"output"`
	Method    string            `json:"method"` // "lora" or "dora"
	DType     safetensors.DType `json:"dtype"`
	Files     []string          `json:"files"` // weight files, in order
	Tensors   int               `json:"tensors"`
	Merged    int               `json:"merged"`     // weights changed by the adapter
	TotalSize int64             `json:"total_size"` // bytes of tensor data
}

// ErrOutputNotEmpty is returned (wrapped) when the output directory already
// has files and Options.Overwrite is not set.
var ErrOutputNotEmpty = errors.New("output directory is not empty")

// sideFiles are copied from the base directory when present.
var sideFiles = []string{
	"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
	"added_tokens.json", "vocab.json", "merges.txt", "generation_config.json",
	"chat_template.jinja", "chat_template.json",
}

// torchDTypes maps safetensors dtypes to config.json's torch_dtype.
var torchDTypes = map[safetensors.DType]string{
	safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16",
}

// Merge folds the adapter in adapterDir into the base model in baseDir and
// writes the merged model to outDir (see the package comment).
func Merge(ctx context.Context, baseDir, adapterDir, outDir string, opts Options) (*Result, error) {
	if opts.DType != "" && torchDTypes[opts.DType] == "" {
		return nil, fmt.Errorf("output dtype %q: want F32, F16 or BF16", opts.DType)
	}
	if opts.MaxShardSize == 0 {
		opts.MaxShardSize = DefaultMaxShardSize
	}
	if opts.MaxShardSize < 0 {
		return nil, fmt.Errorf("max shard size %d: want a positive number of bytes", opts.MaxShardSize)
	}
	if err := checkOverlap(outDir, baseDir, adapterDir); err != nil {
		return nil, err
	}
	if err := checkOutput(outDir, opts.Overwrite); err != nil {
		return nil, err
	}
	cfg, err := modelcfg.Load(baseDir)
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	ad, err := LoadAdapter(adapterDir, cfg)
	if err != nil {
		return nil, err
	}
	base, err := safetensors.OpenDir(baseDir)
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	defer base.Close()

	names := orderNames(base.Names())
	for _, m := range ad.Modules {
		info, ok := base.Info(m.Weight)
		switch {
		case !ok:
			return nil, fmt.Errorf("base model %s has no tensor %s for the adapter's %s", baseDir, m.Weight, m.Proj)
		case !info.DType.IsFloat():
			return nil, fmt.Errorf("base model %s: %s has dtype %s; want a float weight to merge into", baseDir, m.Weight, info.DType)
		case len(info.Shape) != 2 || info.Shape[0] != m.Out || info.Shape[1] != m.In:
			return nil, fmt.Errorf("base model %s: %s has shape %v, the adapter expects [%d %d]", baseDir, m.Weight, info.Shape, m.Out, m.In)
		}
	}
	outType := opts.DType
	if outType == "" {
		outType, err = defaultDType(base, names, cfg)
		if err != nil {
			return nil, fmt.Errorf("base model %s: %w", baseDir, err)
		}
	}

	// Plan: every tensor's output dtype and size, then shards in order.
	infos := make([]safetensors.TensorInfo, len(names))
	for i, n := range names {
		info, _ := base.Info(n)
		dt := info.DType
		if dt.IsFloat() {
			dt = outType
		}
		infos[i] = safetensors.TensorInfo{Name: n, DType: dt, Shape: info.Shape}
	}
	shards := planShards(infos, opts.MaxShardSize)

	_, statErr := os.Lstat(outDir)
	created := errors.Is(statErr, os.ErrNotExist)
	unlock, err := atomicfile.LockDir(outDir)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	done := false
	tmp := ""
	defer func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
		_ = unlock()
		if created && !done {
			_ = os.Remove(outDir) // only if empty: never what another run put there
		}
	}()
	// Checked again under the lock: another run may have written meanwhile.
	if err := checkOutput(outDir, opts.Overwrite); err != nil {
		return nil, err
	}
	if err := removeStaging(outDir); err != nil {
		return nil, err
	}
	tmp, err = os.MkdirTemp(outDir, stagingPrefix)
	if err != nil {
		return nil, fmt.Errorf("creating output: %w", err)
	}

	res := &Result{Output: outDir, Method: "lora", DType: outType, Tensors: len(infos)}
	if ad.DoRA() {
		res.Method = "dora"
	}
	weightMap := map[string]string{}
	written := 0
	for si, shard := range shards {
		file := safetensors.SingleFileName
		if len(shards) > 1 {
			file = safetensors.ShardFileName(si+1, len(shards))
		}
		res.Files = append(res.Files, file)
		w, err := safetensors.NewWriter(filepath.Join(tmp, file), shard, map[string]string{"format": "pt"})
		if err != nil {
			return nil, err
		}
		for _, ti := range shard {
			if err := ctx.Err(); err != nil {
				_ = w.Abort()
				return nil, err
			}
			data, merged, err := outputTensor(base, ti, ad.Module(ti.Name))
			if err == nil {
				err = w.WriteTensor(ti.Name, data)
			}
			if err != nil {
				_ = w.Abort()
				return nil, err
			}
			if merged {
				res.Merged++
			}
			if raw, err := base.Bytes(ti.Name); err == nil {
				release(raw)
			}
			weightMap[ti.Name] = file
			res.TotalSize += int64(len(data))
			written++
			if opts.Progress != nil {
				opts.Progress(written, len(infos))
			}
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	if res.Merged != len(ad.Modules) {
		return nil, fmt.Errorf("internal error: merged %d of %d adapted weights", res.Merged, len(ad.Modules))
	}
	if len(shards) > 1 {
		if err := writeIndex(filepath.Join(tmp, safetensors.IndexFileName), res.TotalSize, weightMap); err != nil {
			return nil, err
		}
	}
	if err := writeConfig(baseDir, tmp, outType); err != nil {
		return nil, err
	}
	var copied []string
	for _, name := range sideFiles {
		ok, err := copyFile(filepath.Join(baseDir, name), filepath.Join(tmp, name))
		if err != nil {
			return nil, err
		}
		if ok {
			copied = append(copied, name)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := commit(tmp, outDir, res.Files, len(shards) > 1, copied); err != nil {
		return nil, err
	}
	done = true
	return res, nil
}

// outputTensor returns the bytes of one output tensor: the base tensor with
// the adapter folded in when m is not nil, else the base tensor in the
// output dtype (its raw bytes when the dtype is unchanged).
func outputTensor(base *safetensors.Model, ti safetensors.TensorInfo, m *Module) ([]byte, bool, error) {
	info, _ := base.Info(ti.Name)
	if m == nil && info.DType == ti.DType {
		b, err := base.Bytes(ti.Name)
		return b, false, err
	}
	vals, err := base.Float32(ti.Name)
	if err != nil {
		return nil, false, err
	}
	if m != nil {
		if info.DType == safetensors.F32 {
			vals = slices.Clone(vals) // a view of the read-only file
		}
		if err := m.Apply(vals); err != nil {
			return nil, false, err
		}
	}
	data, err := safetensors.EncodeFloat32(vals, ti.DType)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", ti.Name, err)
	}
	return data, m != nil, nil
}

// defaultDType is the stored dtype of the base's float tensors when they all
// agree, else its config torch_dtype.
func defaultDType(base *safetensors.Model, names []string, cfg *modelcfg.Config) (safetensors.DType, error) {
	var dt safetensors.DType
	mixed := false
	for _, n := range names {
		info, _ := base.Info(n)
		if !info.DType.IsFloat() {
			continue
		}
		if dt == "" {
			dt = info.DType
		} else if dt != info.DType {
			mixed = true
		}
	}
	if !mixed && torchDTypes[dt] != "" {
		return dt, nil
	}
	for d, name := range torchDTypes {
		if name == cfg.TorchDtype {
			return d, nil
		}
	}
	return "", fmt.Errorf("weights are stored as mixed or unusual dtypes and config.json has torch_dtype %q; choose the output dtype (F32, F16 or BF16)", cfg.TorchDtype)
}

// orderNames sorts tensor names as HF checkpoints list them: embeddings,
// then the layers in numeric order, then everything else (final norm, head).
func orderNames(names []string) []string {
	type key struct {
		group, layer int
		name         string
	}
	keyOf := func(n string) key {
		if rest, ok := strings.CutPrefix(n, "model.layers."); ok {
			if i := strings.IndexByte(rest, '.'); i > 0 {
				if l, err := strconv.Atoi(rest[:i]); err == nil {
					return key{1, l, n}
				}
			}
		}
		if strings.Contains(n, "embed") {
			return key{0, 0, n}
		}
		return key{2, 0, n}
	}
	out := slices.Clone(names)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := keyOf(out[i]), keyOf(out[j])
		if a.group != b.group {
			return a.group < b.group
		}
		if a.layer != b.layer {
			return a.layer < b.layer
		}
		return a.name < b.name
	})
	return out
}

// planShards splits tensors, in order, into shards of at most max bytes of
// data as HF's save_pretrained does: a tensor that does not fit starts a new
// shard, and one larger than max sits alone. Within a shard, tensors are laid
// out as the reference writer does (wider dtypes first, then by name).
func planShards(infos []safetensors.TensorInfo, max int64) [][]safetensors.TensorInfo {
	var shards [][]safetensors.TensorInfo
	var cur []safetensors.TensorInfo
	var size int64
	for _, ti := range infos {
		n := int64(ti.NumElements()) * int64(ti.DType.Size())
		if len(cur) > 0 && size+n > max {
			shards = append(shards, cur)
			cur, size = nil, 0
		}
		cur = append(cur, ti)
		size += n
	}
	if len(cur) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	for _, s := range shards {
		sort.SliceStable(s, func(i, j int) bool {
			if a, b := s[i].DType.Size(), s[j].DType.Size(); a != b {
				return a > b
			}
			return s[i].Name < s[j].Name
		})
	}
	return shards
}

func writeIndex(path string, total int64, weightMap map[string]string) error {
	idx := map[string]any{
		"metadata":   map[string]any{"total_size": total},
		"weight_map": weightMap,
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(data, '\n'))
}

// writeConfig copies config.json with torch_dtype (and "dtype", which newer
// transformers write) set to the output dtype.
func writeConfig(baseDir, outDir string, dt safetensors.DType) error {
	path := filepath.Join(baseDir, "config.json")
	data, err := metafile.Read(path, metafile.MaxJSONBytes)
	if err != nil {
		return fmt.Errorf("reading base config: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	name, _ := json.Marshal(torchDTypes[dt])
	m["torch_dtype"] = name
	if _, ok := m["dtype"]; ok {
		m["dtype"] = name
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeFile(filepath.Join(outDir, "config.json"), append(out, '\n'))
}

func writeFile(path string, data []byte) error {
	return atomicfile.WriteFile(path, data)
}

// copyFile copies src to dst and reports whether it did; a missing src is
// not an error.
func copyFile(src, dst string) (bool, error) {
	data, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("copying %s: %w", src, err)
	}
	return true, writeFile(dst, data)
}

// stagingPrefix names the temporary directory inside the output directory
// that a merge fills before renaming its files into place.
const stagingPrefix = ".bidora-merge-"

// removeStaging removes staging directories that a killed merge left in dir.
// The caller holds dir's lock, so none of them belongs to a running merge.
func removeStaging(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), stagingPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("output %s: removing a killed merge's %s: %w", dir, e.Name(), err)
			}
		}
	}
	return nil
}

// ignorable reports whether an entry of the output directory is Merge's own
// bookkeeping rather than content: the lock file and staging leftovers.
func ignorable(name string) bool {
	return name == atomicfile.LockFileName || strings.HasPrefix(name, stagingPrefix)
}

// checkOutput refuses an output that is not a directory (a symlink to one
// included), and an existing non-empty directory unless overwrite is set.
func checkOutput(dir string, overwrite bool) error {
	if err := atomicfile.CheckDir(dir); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	for _, e := range entries {
		if ignorable(e.Name()) {
			continue
		}
		if !overwrite {
			return fmt.Errorf("%s: %w; choose another or allow overwriting", dir, ErrOutputNotEmpty)
		}
		// Anything Merge would replace must be a regular file; checked here
		// so that a refusal comes before the work, not halfway through commit.
		if isOwned(e.Name()) {
			if err := atomicfile.CheckFile(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("output: %w", err)
			}
		}
	}
	return nil
}

// isOwned reports whether name is a file Merge writes into the output
// directory, so one that an earlier merge may have left there.
func isOwned(name string) bool {
	return name == "config.json" || slices.Contains(sideFiles, name) || isWeightFile(name)
}

// isWeightFile reports whether name is a weight file or index in the layout
// Merge writes: model.safetensors, model-00001-of-00002.safetensors, or
// model.safetensors.index.json.
func isWeightFile(name string) bool {
	if name == safetensors.SingleFileName || name == safetensors.IndexFileName {
		return true
	}
	rest, ok := strings.CutPrefix(name, "model-")
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, ".safetensors")
	if !ok {
		return false
	}
	is, ns, ok := strings.Cut(rest, "-of-")
	if !ok {
		return false
	}
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	return err1 == nil && err2 == nil && i >= 1 && i <= n && name == safetensors.ShardFileName(i, n)
}

// commit renames the finished files in tmp into outDir: the weights first,
// then (with the old index, if any, and weight files the new layout no longer
// has removed) the index, the side files, and config.json last, so that a
// reader never finds a new config.json beside weights it does not describe.
// Files of outDir that Merge does not write are never touched.
func commit(tmp, outDir string, weights []string, sharded bool, side []string) error {
	move := func(name string) error {
		return atomicfile.Commit(filepath.Join(tmp, name), filepath.Join(outDir, name))
	}
	for _, name := range weights {
		if err := move(name); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return fmt.Errorf("output %s: %w", outDir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if !isWeightFile(name) || slices.Contains(weights, name) || (sharded && name == safetensors.IndexFileName) {
			continue
		}
		if err := os.Remove(filepath.Join(outDir, name)); err != nil {
			return fmt.Errorf("output %s: removing the previous merge's %s: %w", outDir, name, err)
		}
	}
	if sharded {
		if err := move(safetensors.IndexFileName); err != nil {
			return err
		}
	}
	for _, name := range side {
		if err := move(name); err != nil {
			return err
		}
	}
	return move("config.json")
}

// OverlapError reports an output directory that is, contains, or lies inside
// one of the merge's inputs; writing there could overwrite what the merge
// reads.
type OverlapError struct {
	Output string
	Input  string
	Role   string // "model" or "adapter"
	// Relation of the output to the input: "is", "contains" or "is inside".
	Relation string
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("output %s %s the %s directory %s; choose an output directory apart from the inputs", e.Output, e.Relation, e.Role, e.Input)
}

// checkOverlap refuses an output directory that overlaps the base or adapter
// directory, comparing absolute paths with symlinks resolved.
func checkOverlap(outDir, baseDir, adapterDir string) error {
	out, err := resolvePath(outDir)
	if err != nil {
		return fmt.Errorf("output %s: %w", outDir, err)
	}
	for _, in := range []struct{ role, dir string }{{"model", baseDir}, {"adapter", adapterDir}} {
		p, err := resolvePath(in.dir)
		if err != nil {
			return fmt.Errorf("%s %s: %w", in.role, in.dir, err)
		}
		rel := ""
		switch {
		case p == out:
			rel = "is"
		case within(p, out):
			rel = "contains"
		case within(out, p):
			rel = "is inside"
		default:
			continue
		}
		return &OverlapError{Output: outDir, Input: in.dir, Role: in.role, Relation: rel}
	}
	return nil
}

// within reports whether path p lies strictly inside directory dir (both clean
// and absolute).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolvePath returns p absolute and clean with symlinks resolved; the part
// of p that does not exist yet is appended to its deepest existing ancestor,
// resolved.
func resolvePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var missing []string
	for {
		r, err := filepath.EvalSymlinks(abs)
		if err == nil {
			return filepath.Join(append([]string{r}, missing...)...), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return filepath.Join(append([]string{abs}, missing...)...), nil
		}
		missing = append([]string{filepath.Base(abs)}, missing...)
		abs = parent
	}
}
