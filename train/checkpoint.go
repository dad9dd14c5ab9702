package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/bidora/bidora/internal/atomicfile"

	"github.com/bidora/bidora/internal/plot"
	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/safetensors"
)

// Checkpoint files (besides the PEFT adapter files written by the model).
const (
	optimizerFile = "optimizer.safetensors"
	stateFile     = "trainer_state.json"
	MetricsFile   = "metrics.jsonl"
	LossPlotFile  = "loss.png"
)

// saveCheckpoint writes adapter, optimiser state and trainer state into dir, through a
// temporary directory renamed at the end, so a crash never leaves half a checkpoint.
func saveCheckpoint(dir string, model Model, opt optim.Optimizer, st *state) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := ensureDir(tmp); err != nil {
		return err
	}
	if err := model.SaveAdapter(tmp); err != nil {
		return fmt.Errorf("saving checkpoint adapter: %w", err)
	}
	var tensors []safetensors.Tensor
	for name, v := range opt.State() {
		t, err := safetensors.NewTensor(name, safetensors.F32, []int{len(v)}, v)
		if err != nil {
			return err
		}
		tensors = append(tensors, t)
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, optimizerFile), tensors, nil); err != nil {
		return fmt.Errorf("saving optimizer state: %w", err)
	}
	data, err := json.MarshalIndent(jsonState(st), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, stateFile), data, 0o644); err != nil {
		return fmt.Errorf("saving trainer state: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replacing %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	return nil
}

// jsonState replaces the infinities and NaNs JSON cannot hold.
func jsonState(st *state) map[string]any {
	num := func(v float64) any {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	}
	return map[string]any{
		"global_step": st.Step, "epoch": st.Epoch, "batch_in_epoch": st.Batch,
		"best_val_loss": num(st.BestValLoss), "best_step": st.BestStep, "first_val_loss": num(st.FirstValLoss),
		"log_history": st.History, "seed": st.Seed, "total_steps": st.TotalSteps,
	}
}

func loadCheckpoint(dir string, model Model, opt optim.Optimizer, st *state) error {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return fmt.Errorf("not a checkpoint directory: %w", err)
	}
	var raw struct {
		state
		BestValLoss  *float64 `json:"best_val_loss"`
		FirstValLoss *float64 `json:"first_val_loss"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	*st = raw.state
	st.BestValLoss, st.FirstValLoss = math.Inf(1), math.NaN()
	if raw.BestValLoss != nil {
		st.BestValLoss = *raw.BestValLoss
	}
	if raw.FirstValLoss != nil {
		st.FirstValLoss = *raw.FirstValLoss
	}
	if err := model.LoadAdapter(dir); err != nil {
		return err
	}
	f, err := safetensors.Open(filepath.Join(dir, optimizerFile))
	if err != nil {
		return err
	}
	defer f.Close()
	s := map[string][]float32{}
	for _, name := range f.Names() {
		v, err := f.Float32(name)
		if err != nil {
			return err
		}
		s[name] = append([]float32(nil), v...)
	}
	return opt.SetState(s)
}

// MetricsLog appends JSON lines to metrics.jsonl. Opening it for a resumed run first
// drops the lines after the checkpoint's step, so the file reads as one uninterrupted
// run. (Package bilevel writes its two-level metrics through it too.)
type MetricsLog struct {
	f *os.File
}

// OpenMetricsLog opens outDir/metrics.jsonl, keeping the lines of steps ≤ keepUpTo
// (0: start empty).
func OpenMetricsLog(outDir string, keepUpTo int) (*MetricsLog, error) {
	if err := ensureDir(outDir); err != nil {
		return nil, err
	}
	path := filepath.Join(outDir, MetricsFile)
	var kept bytes.Buffer
	if keepUpTo > 0 {
		if old, err := os.ReadFile(path); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(old))
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
		}
	}
	if err := os.WriteFile(path, kept.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &MetricsLog{f: f}, nil
}

// Write appends one JSON line.
func (m *MetricsLog) Write(x any) error {
	data, err := json.Marshal(x)
	if err != nil {
		return err
	}
	if _, err := m.f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	return nil
}

// Close closes the file.
func (m *MetricsLog) Close() error { return m.f.Close() }

// writeOutputs writes the final adapter and the loss plot into the output dir.
func writeOutputs(o Options, model Model, res *Result) error {
	if err := model.SaveAdapter(o.Output); err != nil {
		return fmt.Errorf("saving adapter: %w", err)
	}
	var tx, ty, vx, vy []float64
	for _, m := range res.History {
		tx, ty = append(tx, float64(m.Step)), append(ty, m.Loss)
		if m.ValLoss != nil {
			vx, vy = append(vx, float64(m.Step)), append(vy, *m.ValLoss)
		}
	}
	if !math.IsNaN(res.FirstValLoss) && len(vx) > 0 && vx[0] != 0 {
		vx, vy = append([]float64{0}, vx...), append([]float64{res.FirstValLoss}, vy...)
	}
	chart := plot.Chart{Title: "bidora training loss", XLabel: "step", YLabel: "loss", Series: []plot.Series{
		{Name: "train", X: tx, Y: ty, Color: plot.Blue},
		{Name: "validation", X: vx, Y: vy, Color: plot.Orange, Markers: true},
	}}
	return atomicfile.Write(filepath.Join(o.Output, LossPlotFile), chart.WritePNG)
}

// CheckOutputDir refuses a non-empty output directory unless overwrite is set.
func CheckOutputDir(dir string, overwrite bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--output %s: %w", dir, err)
	}
	if len(entries) > 0 && !overwrite {
		names := []string{}
		for _, e := range entries[:min(3, len(entries))] {
			names = append(names, e.Name())
		}
		return fmt.Errorf("--output %s is not empty (has %s…); pass --overwrite to reuse it or --resume to continue a run", dir, strings.Join(names, ", "))
	}
	return nil
}
