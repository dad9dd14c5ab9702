package bilevel

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/bidora/bidora/internal/plot"
	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/safetensors"
	"github.com/bidora/bidora/train"
)

// Checkpoint files besides the PEFT adapter.
const (
	optimizerFile = "optimizer.safetensors"         // "lower.*" and "upper.*" optimiser state
	initialFile   = "initial_direction.safetensors" // the direction the retraining restarts from
	stateFile     = "trainer_state.json"
)

// state is what a checkpoint stores besides tensors.
type state struct {
	Phase        string    `json:"phase"`
	Step         int       `json:"global_step"`
	PhaseStep    int       `json:"phase_step"`
	Epoch        int       `json:"epoch"`
	Batch        int       `json:"batch_in_epoch"`
	OuterEpoch   int       `json:"outer_epoch"`
	OuterBatch   int       `json:"outer_batch_in_epoch"`
	SearchSteps  int       `json:"search_steps"`
	RetrainSteps int       `json:"retrain_steps"`
	Seed         uint64    `json:"seed"`
	FirstOrder   bool      `json:"first_order"`
	BestValLoss  float64   `json:"-"`
	FirstValLoss float64   `json:"-"`
	BestStep     int       `json:"best_step"`
	History      []Metrics `json:"log_history"`
	// JSON cannot hold ±Inf and NaN: these carry the two losses (null when unset).
	BestValJSON  *float64 `json:"best_val_loss"`
	FirstValJSON *float64 `json:"first_val_loss"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// save writes the checkpoint through a temporary directory renamed at the end.
func (t *trainer) save(dir string) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := t.model.SaveAdapter(tmp); err != nil {
		return fmt.Errorf("saving checkpoint adapter: %w", err)
	}
	var opt []safetensors.Tensor
	for _, lv := range []struct {
		prefix string
		o      optim.Optimizer
	}{{"lower.", t.lowerOpt}, {"upper.", t.upperOpt}} {
		for name, v := range lv.o.State() {
			ts, err := safetensors.NewTensor(lv.prefix+name, safetensors.F32, []int{len(v)}, v)
			if err != nil {
				return err
			}
			opt = append(opt, ts)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, optimizerFile), opt, nil); err != nil {
		return fmt.Errorf("saving optimizer state: %w", err)
	}
	var init []safetensors.Tensor
	for i, p := range t.dir {
		ts, err := safetensors.NewTensor(p.Name, safetensors.F32, []int{len(t.init[i])}, t.init[i])
		if err != nil {
			return err
		}
		init = append(init, ts)
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, initialFile), init, nil); err != nil {
		return fmt.Errorf("saving initial direction: %w", err)
	}
	st := t.st
	st.BestValJSON, st.FirstValJSON = finite(st.BestValLoss), finite(st.FirstValLoss)
	data, err := json.MarshalIndent(&st, "", "  ")
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

// load restores a checkpoint written by save into the trainer.
func (t *trainer) load(dir string) error {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("not a checkpoint directory: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if st.Phase != PhaseSearch && st.Phase != PhaseRetrain {
		return fmt.Errorf("%s: phase %q is not %s or %s (not a BiDoRA checkpoint?)", path, st.Phase, PhaseSearch, PhaseRetrain)
	}
	if st.Seed != t.st.Seed || st.SearchSteps != t.st.SearchSteps || st.RetrainSteps != t.st.RetrainSteps || st.FirstOrder != t.st.FirstOrder {
		return fmt.Errorf("the checkpoint was made with seed %d, %d+%d steps, first order %v; this run has seed %d, %d+%d steps, first order %v; use the same data and settings",
			st.Seed, st.SearchSteps, st.RetrainSteps, st.FirstOrder, t.st.Seed, t.st.SearchSteps, t.st.RetrainSteps, t.st.FirstOrder)
	}
	st.BestValLoss, st.FirstValLoss = math.Inf(1), math.NaN()
	if st.BestValJSON != nil {
		st.BestValLoss = *st.BestValJSON
	}
	if st.FirstValJSON != nil {
		st.FirstValLoss = *st.FirstValJSON
	}
	st.BestValJSON, st.FirstValJSON = nil, nil
	if err := t.model.LoadAdapter(dir); err != nil {
		return err
	}
	tensors, err := readTensors(filepath.Join(dir, initialFile))
	if err != nil {
		return err
	}
	for i, p := range t.dir {
		v, ok := tensors[p.Name]
		if !ok || len(v) != len(t.init[i]) {
			return fmt.Errorf("%s: tensor %s is missing or has the wrong size", filepath.Join(dir, initialFile), p.Name)
		}
		copy(t.init[i], v)
	}
	opt, err := readTensors(filepath.Join(dir, optimizerFile))
	if err != nil {
		return err
	}
	lower, upper := map[string][]float32{}, map[string][]float32{}
	for name, v := range opt {
		switch {
		case strings.HasPrefix(name, "lower."):
			lower[strings.TrimPrefix(name, "lower.")] = v
		case strings.HasPrefix(name, "upper."):
			upper[strings.TrimPrefix(name, "upper.")] = v
		}
	}
	if err := t.lowerOpt.SetState(lower); err != nil {
		return fmt.Errorf("%s: direction %w", filepath.Join(dir, optimizerFile), err)
	}
	if err := t.upperOpt.SetState(upper); err != nil {
		return fmt.Errorf("%s: magnitude %w", filepath.Join(dir, optimizerFile), err)
	}
	t.st = st
	return nil
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
		out[name] = append([]float32(nil), v...)
	}
	return out, nil
}

// writeOutputs writes the final adapter and the loss plot (both levels).
func writeOutputs(dir string, model train.Model, r *Result) error {
	if err := model.SaveAdapter(dir); err != nil {
		return fmt.Errorf("saving adapter: %w", err)
	}
	var lx, ly, ux, uy, vx, vy []float64
	for _, m := range r.Log {
		lx, ly = append(lx, float64(m.Step)), append(ly, m.LowerLoss)
		if m.UpperLoss != nil {
			ux, uy = append(ux, float64(m.Step)), append(uy, *m.UpperLoss)
		}
		if m.ValLoss != nil {
			vx, vy = append(vx, float64(m.Step)), append(vy, *m.ValLoss)
		}
	}
	if !math.IsNaN(r.FirstValLoss) && len(vx) > 0 && vx[0] != 0 {
		vx, vy = append([]float64{0}, vx...), append([]float64{r.FirstValLoss}, vy...)
	}
	chart := plot.Chart{Title: "bidora BiDoRA training loss", XLabel: "step", YLabel: "loss", Series: []plot.Series{
		{Name: "lower (direction)", X: lx, Y: ly, Color: plot.Blue},
		{Name: "upper (magnitude)", X: ux, Y: uy, Color: color.RGBA{44, 160, 44, 255}},
		{Name: "validation", X: vx, Y: vy, Color: plot.Orange, Markers: true},
	}}
	path := filepath.Join(dir, train.LossPlotFile)
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = chart.WritePNG(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}
