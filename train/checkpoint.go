package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bidora/bidora/internal/atomicfile"
	"github.com/bidora/bidora/internal/plot"
	"github.com/bidora/bidora/safetensors"
)

// Files of the output directory and of each checkpoint-N directory (besides the PEFT
// adapter files written by the model).
const (
	optimizerFile    = "optimizer.safetensors" // the stepper's state
	stateFile        = "trainer_state.json"
	MetricsFile      = "metrics.jsonl"
	LossPlotFile     = "loss.png"
	checkpointPrefix = "checkpoint-"
	maxStateBytes    = 256 << 20 // trainer_state.json holds the metric history
)

// state is what a checkpoint stores besides the adapter and the stepper's tensors.
type state struct {
	Step         int       `json:"global_step"`
	Phase        int       `json:"phase"`
	PhaseStep    int       `json:"phase_step"`
	Epoch        int       `json:"epoch"`
	Batch        int       `json:"batch_in_epoch"`
	BestValLoss  float64   `json:"-"`
	FirstValLoss float64   `json:"-"`
	BestStep     int       `json:"best_step"`
	History      []Metrics `json:"log_history"`
	Seed         uint64    `json:"seed"`
	TotalSteps   int       `json:"total_steps"`
	PhaseSteps   []int     `json:"phase_steps"`
	// Identity and Tunable are the run's settings (see Options).
	Identity map[string]string `json:"identity,omitempty"`
	Tunable  map[string]string `json:"tunable,omitempty"`
	// JSON has no ±Inf or NaN: these carry the two losses (null when unset).
	BestValJSON  *float64 `json:"best_val_loss"`
	FirstValJSON *float64 `json:"first_val_loss"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// identity is o.Identity plus what the loop itself must keep to continue a run: the
// seed, the batching and optimiser settings (named by their Options field) and the
// fingerprint of the phases' data in their order ("data").
func identity(o Options, phases []Phase) map[string]string {
	id := map[string]string{
		"Seed": strconv.FormatUint(o.Seed, 10), "BatchSize": strconv.Itoa(o.BatchSize), "GradAccum": strconv.Itoa(o.GradAccum),
		"Packing": strconv.FormatBool(o.Packing), "MaxSeqLen": strconv.Itoa(o.MaxSeqLen), "GroupByLen": strconv.FormatBool(o.GroupByLen),
		"Optimizer": o.Optimizer,
	}
	for k, v := range o.Identity {
		id[k] = v
	}
	h := fnv.New64a()
	var buf [4]byte
	for _, p := range phases {
		io.WriteString(h, p.Name)
		for _, ex := range p.Data {
			for _, v := range [][]int32{ex.InputIDs, ex.Labels} {
				for _, x := range v {
					buf[0], buf[1], buf[2], buf[3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
					h.Write(buf[:])
				}
				h.Write([]byte{0xff, 0xfe, 0xfd, 0xfc})
			}
		}
	}
	id["data"] = fmt.Sprintf("%016x", h.Sum64())
	return id
}

// save writes a checkpoint: the adapter, the stepper's state and the loop's state,
// into a temporary directory that then replaces dir in one crash-safe swap.
func (l *loop) save(dir string) error {
	tmp, err := atomicfile.TempDir(dir)
	if err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the swap; removes what a failed save left
	if err := l.model.SaveAdapter(tmp); err != nil {
		return fmt.Errorf("saving checkpoint %s: %w", dir, err)
	}
	stepper := l.phases[min(l.st.Phase, len(l.phases)-1)].Stepper
	var tensors []safetensors.Tensor
	names := []string{}
	state := stepper.State()
	for name := range state {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := state[name]
		t, err := safetensors.NewTensor(name, safetensors.F32, []int{len(v)}, v)
		if err != nil {
			return err
		}
		tensors = append(tensors, t)
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, optimizerFile), tensors, nil); err != nil {
		return fmt.Errorf("saving checkpoint %s: %w", dir, err)
	}
	st := l.st
	st.BestValJSON, st.FirstValJSON = finite(st.BestValLoss), finite(st.FirstValLoss)
	data, err := json.MarshalIndent(&st, "", "  ")
	if err != nil {
		return fmt.Errorf("saving checkpoint %s: %w", dir, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, stateFile), data); err != nil {
		return fmt.Errorf("saving checkpoint %s: %w", dir, err)
	}
	if err := atomicfile.ReplaceDir(tmp, dir); err != nil {
		return fmt.Errorf("saving checkpoint %s: %w", dir, err)
	}
	return nil
}

// readState reads and checks a checkpoint's trainer_state.json.
func readState(dir string) (*state, error) {
	path := filepath.Join(dir, stateFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("not a checkpoint directory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxStateBytes>>20)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Step < 0 || st.Phase < 0 || st.PhaseStep < 0 || st.Epoch < 0 || st.Batch < 0 {
		return nil, fmt.Errorf("%s: negative step, phase, epoch or batch", path)
	}
	st.BestValLoss, st.FirstValLoss = math.Inf(1), math.NaN()
	if st.BestValJSON != nil {
		st.BestValLoss = *st.BestValJSON
	}
	if st.FirstValJSON != nil {
		st.FirstValLoss = *st.FirstValJSON
	}
	st.BestValJSON, st.FirstValJSON = nil, nil
	if st.PhaseSteps == nil { // written before phases existed: one phase
		st.PhaseStep = st.Step
	}
	return &st, nil
}

// resume checks a checkpoint against this run, then loads it: first everything that
// can be checked without changing the model, then the adapter and the stepper's state.
func (l *loop) resume(dir string) error {
	st, err := readState(dir)
	if err != nil {
		return err
	}
	if st.Phase >= len(l.phases) {
		return fmt.Errorf("%s: phase %d, this run has %d phases", filepath.Join(dir, stateFile), st.Phase, len(l.phases))
	}
	if st.Identity != nil {
		for _, k := range sortedKeys(l.st.Identity) {
			saved, ok := st.Identity[k]
			if ok && saved != l.st.Identity[k] {
				return &ResumeMismatchError{Checkpoint: dir, Name: k, Saved: saved, Run: l.st.Identity[k]}
			}
		}
	} else if st.Seed != l.o.Seed {
		return &ResumeMismatchError{Checkpoint: dir, Name: "Seed", Saved: strconv.FormatUint(st.Seed, 10), Run: strconv.FormatUint(l.o.Seed, 10)}
	}
	for _, k := range sortedKeys(l.o.Tunable) {
		if saved, ok := st.Tunable[k]; ok && saved != l.o.Tunable[k] {
			l.res.Changed = append(l.res.Changed, Change{Name: k, From: saved, To: l.o.Tunable[k]})
		}
	}
	stepper := l.phases[st.Phase].Stepper
	if err := l.model.LoadAdapter(dir); err != nil {
		return err
	}
	tensors, err := readTensors(filepath.Join(dir, optimizerFile))
	if err != nil {
		return err
	}
	if err := stepper.SetState(tensors); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, optimizerFile), err)
	}
	st.Identity, st.Tunable, st.PhaseSteps, st.TotalSteps = l.st.Identity, l.st.Tunable, l.totals, sum(l.totals)
	if st.PhaseStep > l.totals[st.Phase] {
		return fmt.Errorf("the checkpoint is at step %d of phase %s, which this run ends at step %d", st.PhaseStep, l.phases[st.Phase].Name, l.totals[st.Phase])
	}
	l.st = *st
	for _, c := range l.res.Changed {
		l.log.Message("changed on resume: %s %s → %s", c.Name, c.From, c.To)
	}
	l.log.Message("resumed from %s at step %d (epoch %d, batch %d)", dir, st.Step, st.Epoch, st.Batch)
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func readTensors(path string) (map[string][]float32, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, name := range f.Names() {
		v, err := f.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[name] = slices.Clone(v)
	}
	return out, nil
}

// checkpointStep parses "checkpoint-N".
func checkpointStep(name string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, checkpointPrefix))
	return n, err == nil && strings.HasPrefix(name, checkpointPrefix) && n >= 0
}

// Checkpoints lists the complete checkpoint directories of an output directory (those
// with a trainer state), oldest first.
func Checkpoints(outDir string) ([]string, error) {
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return nil, err
	}
	type ck struct {
		step int
		dir  string
	}
	var cks []ck
	for _, e := range entries {
		n, ok := checkpointStep(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		dir := filepath.Join(outDir, e.Name())
		if fi, err := os.Stat(filepath.Join(dir, stateFile)); err == nil && fi.Mode().IsRegular() {
			cks = append(cks, ck{n, dir})
		}
	}
	slices.SortFunc(cks, func(a, b ck) int { return a.step - b.step })
	out := make([]string, len(cks))
	for i, c := range cks {
		out[i] = c.dir
	}
	return out, nil
}

// ErrNoCheckpoint is returned by LatestCheckpoint for a directory without one.
var ErrNoCheckpoint = errors.New("no complete checkpoint")

// LatestCheckpoint is the newest complete checkpoint of outDir. For a directory
// that is itself a checkpoint, it returns dir.
func LatestCheckpoint(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return dir, nil
	}
	cks, err := Checkpoints(dir)
	if err != nil {
		return "", err
	}
	if len(cks) == 0 {
		return "", fmt.Errorf("%s: %w", dir, ErrNoCheckpoint)
	}
	return cks[len(cks)-1], nil
}

// pruneCheckpoints deletes the checkpoints older than the newest keep, sparing the one
// with the best validation loss (as HF Trainer's save_total_limit does with a best
// model): at most keep+1 remain.
func pruneCheckpoints(outDir string, keep int, history []Metrics) error {
	cks, err := Checkpoints(outDir)
	if err != nil {
		return err
	}
	best, bestLoss := -1, math.Inf(1)
	val := map[int]float64{}
	for _, m := range history {
		if m.ValLoss != nil {
			val[m.Step] = *m.ValLoss
		}
	}
	for i, dir := range cks {
		n, _ := checkpointStep(filepath.Base(dir))
		if v, ok := val[n]; ok && v < bestLoss {
			best, bestLoss = i, v
		}
	}
	for i := 0; i < len(cks)-keep; i++ {
		if i == best {
			continue
		}
		if err := os.RemoveAll(cks[i]); err != nil {
			return fmt.Errorf("removing old checkpoint: %w", err)
		}
	}
	return nil
}

// RecoverOutput finishes or undoes a checkpoint swap that a crash interrupted (so that
// the last complete checkpoint is back in place) and removes the temporary
// directories a killed run left behind, including checkpoint-N.tmp of earlier
// versions. Nothing else in outDir is touched. Run calls it; call it before
// LatestCheckpoint when choosing where to resume.
func RecoverOutput(outDir string) error {
	if err := atomicfile.RecoverAll(outDir); err != nil {
		return err
	}
	entries, err := os.ReadDir(outDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", outDir, err)
	}
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ".tmp"); ok && e.IsDir() {
			if _, isCk := checkpointStep(base); isCk {
				if err := os.RemoveAll(filepath.Join(outDir, e.Name())); err != nil {
					return fmt.Errorf("removing %s: %w", e.Name(), err)
				}
			}
		}
	}
	return nil
}

// metricsLog appends JSON lines to metrics.jsonl. Opening it for a resumed run first
// drops the lines after the checkpoint's step, so the file reads as one uninterrupted
// run.
type metricsLog struct {
	f *os.File
}

// openMetricsLog opens outDir/metrics.jsonl, keeping the lines of steps ≤ keepUpTo
// (0: start empty).
func openMetricsLog(outDir string, keepUpTo int) (*metricsLog, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", outDir, err)
	}
	path := filepath.Join(outDir, MetricsFile)
	var kept bytes.Buffer
	if keepUpTo > 0 {
		if old, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(old)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var m struct {
					Step int `json:"step"`
				}
				if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step <= keepUpTo {
					kept.Write(sc.Bytes())
					kept.WriteByte('\n')
				}
			}
			old.Close()
		}
	}
	if err := atomicfile.WriteFile(path, kept.Bytes()); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &metricsLog{f: f}, nil
}

// Write appends one JSON line.
func (m *metricsLog) Write(x any) error {
	data, err := json.Marshal(x)
	if err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	if _, err := m.f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	return nil
}

// Close closes the file.
func (m *metricsLog) Close() error { return m.f.Close() }

// writeOutputs writes the final adapter and the loss plot into the output dir.
func writeOutputs(o *Options, model Model, res *Result) error {
	if err := model.SaveAdapter(o.Output); err != nil {
		return err
	}
	var tx, ty, vx, vy []float64
	extra := make([]plot.Series, len(o.PlotSeries))
	for _, m := range res.History {
		tx, ty = append(tx, float64(m.Step)), append(ty, m.Loss)
		if m.ValLoss != nil {
			vx, vy = append(vx, float64(m.Step)), append(vy, *m.ValLoss)
		}
		for i, name := range o.PlotSeries {
			if v, ok := m.Extra[name]; ok {
				extra[i].X, extra[i].Y = append(extra[i].X, float64(m.Step)), append(extra[i].Y, v)
			}
		}
	}
	if !math.IsNaN(res.FirstValLoss) && len(vx) > 0 && vx[0] != 0 {
		vx, vy = append([]float64{0}, vx...), append([]float64{res.FirstValLoss}, vy...)
	}
	series := []plot.Series{{Name: "train", X: tx, Y: ty, Color: plot.Blue}}
	for i, name := range o.PlotSeries {
		extra[i].Name, extra[i].Color = strings.ReplaceAll(name, "_", " "), plot.Green
		series = append(series, extra[i])
	}
	series = append(series, plot.Series{Name: "validation", X: vx, Y: vy, Color: plot.Orange, Markers: true})
	chart := plot.Chart{Title: "bidora training loss", XLabel: "step", YLabel: "loss", Series: series}
	return atomicfile.Write(filepath.Join(o.Output, LossPlotFile), chart.WritePNG)
}

// CheckOutputDir refuses a non-empty output directory unless overwrite is set (a lock
// taken with atomicfile.LockDir does not count).
func CheckOutputDir(dir string, overwrite bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	names := []string{}
	for _, e := range entries {
		if e.Name() != atomicfile.LockFileName { // the run's own lock
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 && !overwrite {
		return &OutputNotEmptyError{Dir: dir, Names: names[:min(3, len(names))]}
	}
	return nil
}
