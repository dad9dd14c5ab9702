package train

import (
	"context"
	"errors"
	"github.com/bidora/bidora/internal/testutil"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/bidora/bidora/dataset"
)

// cancelInEval cancels the run from inside the n-th evaluation call and reports the
// cancellation as the model would.
type cancelInEval struct {
	*bigram
	n, calls int
	cancel   func()
}

func (m *cancelInEval) Loss(ctx context.Context, b *dataset.Batch) (float64, int, error) {
	m.calls++
	if m.calls == m.n {
		m.cancel()
		return 0, 0, ctx.Err()
	}
	return m.bigram.Loss(ctx, b)
}

// TestInterruptDuringEvaluationSaves: Ctrl-C while the validation loss is being
// computed keeps the step just made: a checkpoint of it is saved, and resuming from
// it ends with the weights of an uninterrupted run.
func TestInterruptDuringEvaluationSaves(t *testing.T) {
	ex, val := corpus(24, 11), corpus(6, 11)
	full := newBigram(11)
	o := opts(t)
	o.EvalSteps = 3
	if _, err := fit(context.Background(), full, ex, val, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Loss calls: 3 batches of validation at step 0, then 3 at step 3: cancel in the
	// second batch of step 3's evaluation.
	m := &cancelInEval{bigram: newBigram(11), n: 5, cancel: cancel}
	o2 := opts(t)
	o2.EvalSteps = 3
	res, err := fit(ctx, m, ex, val, o2)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	ck := filepath.Join(o2.Output, "checkpoint-3")
	if res.Checkpoint != ck || res.Steps != 3 {
		t.Fatalf("interrupted in step 3's evaluation: checkpoint %q after %d steps", res.Checkpoint, res.Steps)
	}
	if lines := readMetrics(t, o2.Output); len(lines) != 3 || lines[2].ValLoss != nil {
		t.Fatalf("metrics.jsonl: %d lines (want 3, the last without a validation loss)", len(lines))
	}
	resumed := newBigram(11)
	o3 := o2
	o3.ResumeFrom = ck
	if _, err := fit(context.Background(), resumed, ex, val, o3); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(full.w.Data, resumed.w.Data) {
		t.Fatal("resumed after an interrupted evaluation: weights differ from the uninterrupted run")
	}
}

// TestResumeValidatesBeforeTouchingFiles: a checkpoint that does not fit the run (other
// identity settings, another adapter's optimiser state) is refused with a typed error
// and leaves metrics.jsonl as it was.
func TestResumeValidatesBeforeTouchingFiles(t *testing.T) {
	ex := corpus(24, 11)
	o := opts(t)
	o.SaveSteps = 2
	o.Identity = map[string]string{"rank": "8"}
	o.Tunable = map[string]string{"lr": "0.5"}
	if _, err := fit(context.Background(), newBigram(11), ex, nil, o); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(o.Output, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(o.Output, "checkpoint-4")
	for _, tc := range []struct {
		name string
		edit func(o *Options) Model
		key  string
	}{
		{"rank", func(o *Options) Model { o.Identity = map[string]string{"rank": "16"}; return newBigram(11) }, "rank"},
		{"batch size", func(o *Options) Model { o.BatchSize = 3; return newBigram(11) }, "BatchSize"},
		{"optimizer", func(o *Options) Model { o.Optimizer = "sgd"; return newBigram(11) }, "Optimizer"},
	} {
		o2 := o
		o2.ResumeFrom = ck
		m := tc.edit(&o2)
		_, err := fit(context.Background(), m, ex, nil, o2)
		var rm *ResumeMismatchError
		if !errors.As(err, &rm) || rm.Name != tc.key {
			t.Errorf("%s: want a ResumeMismatchError on %s, got %v", tc.name, tc.key, err)
		}
	}
	// Another adapter's tensors (a bigger table) with the identity unchanged: the
	// optimiser state does not fit and is refused instead of panicking in Step.
	o2 := o
	o2.ResumeFrom = ck
	if _, err := fit(context.Background(), newBigram(12), ex, nil, o2); err == nil {
		t.Error("optimiser state of another adapter accepted")
	}
	after, _ := os.ReadFile(filepath.Join(o.Output, MetricsFile))
	if !reflect.DeepEqual(before, after) {
		t.Error("a refused resume changed metrics.jsonl")
	}
	// A tunable setting may change: it is reported.
	o3 := o
	o3.ResumeFrom, o3.LR, o3.Tunable = ck, 0.25, map[string]string{"lr": "0.25"}
	res, err := fit(context.Background(), newBigram(11), ex, nil, o3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Change{{Name: "lr", From: "0.5", To: "0.25"}}; !reflect.DeepEqual(res.Changed, want) {
		t.Errorf("changes %v, want %v", res.Changed, want)
	}
}

// TestSaveTotalLimitKeepsNewestAndBest: with a limit of 2, the newest two checkpoints
// and the one with the best validation loss survive.
func TestSaveTotalLimitKeepsNewestAndBest(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{2, 4, 6, 8} {
		if err := os.MkdirAll(filepath.Join(dir, "checkpoint-"+strconv.Itoa(n)), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "checkpoint-"+strconv.Itoa(n), stateFile), []byte("{}"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "checkpoint-10.tmp"), 0o755) // incomplete: not counted
	os.MkdirAll(filepath.Join(dir, "other"), 0o755)             // not ours: never touched
	v := func(x float64) *float64 { return &x }
	hist := []Metrics{{Step: 2, ValLoss: v(3)}, {Step: 4, ValLoss: v(1)}, {Step: 6, ValLoss: v(2)}, {Step: 8, ValLoss: v(2.5)}}
	if err := pruneCheckpoints(dir, 2, hist); err != nil {
		t.Fatal(err)
	}
	got, err := Checkpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "checkpoint-4"), filepath.Join(dir, "checkpoint-6"), filepath.Join(dir, "checkpoint-8")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if latest, err := LatestCheckpoint(dir); err != nil || latest != want[2] {
		t.Fatalf("latest %q %v", latest, err)
	}
	if err := RecoverOutput(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint-10.tmp")); !os.IsNotExist(err) {
		t.Error("stale checkpoint-10.tmp not removed")
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err != nil {
		t.Error("a directory the run did not create was removed")
	}
	if _, err := LatestCheckpoint(t.TempDir()); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("empty dir: %v", err)
	}
}

// TestSaveTotalLimitInARun: a long run with a checkpoint every step keeps two.
func TestSaveTotalLimitInARun(t *testing.T) {
	o := opts(t)
	o.SaveSteps, o.SaveTotalLimit = 1, 2
	if _, err := fit(context.Background(), newBigram(11), corpus(24, 11), nil, o); err != nil {
		t.Fatal(err)
	}
	cks, _ := Checkpoints(o.Output)
	if len(cks) != 2 || filepath.Base(cks[1]) != "checkpoint-17" {
		t.Fatalf("checkpoints %v, want the newest two (…-16, …-17)", cks)
	}
}

// TestCheckpointSwapCrashRecovers models a crash at every point of a checkpoint swap
// (the new checkpoint-4 written beside the old one, the old moved aside, the new in
// place with the old still aside): after RecoverOutput the newest checkpoint is a
// complete checkpoint-4 and the run resumes from it to the uninterrupted result.
func TestCheckpointSwapCrashRecovers(t *testing.T) {
	ex := corpus(24, 11)
	full := newBigram(11)
	o := opts(t)
	o.SaveSteps = 2
	if _, err := fit(context.Background(), full, ex, nil, o); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(o.Output, "checkpoint-4")
	pid := strconv.Itoa(os.Getpid())
	tmp := filepath.Join(o.Output, ".checkpoint-4.bidora-tmp-"+pid+"-1")
	old := filepath.Join(o.Output, ".checkpoint-4.bidora-old-"+pid)
	for _, crash := range []struct {
		name  string
		setup func()
	}{
		{"new copy written, old in place", func() { testutil.CopyDir(t, ck, tmp) }},
		{"old moved aside, new not yet in place", func() { testutil.CopyDir(t, ck, tmp); os.Rename(ck, old) }},
		{"new in place, old still aside", func() { testutil.CopyDir(t, ck, old) }},
		{"half-written new copy", func() { os.MkdirAll(tmp, 0o755); os.WriteFile(filepath.Join(tmp, stateFile), []byte("{"), 0o644) }},
	} {
		cks, _ := Checkpoints(o.Output)
		for _, c := range cks[2:] { // keep checkpoint-2 and -4: the crash hits the newest
			os.RemoveAll(c)
		}
		crash.setup()
		if err := RecoverOutput(o.Output); err != nil {
			t.Fatalf("%s: %v", crash.name, err)
		}
		latest, err := LatestCheckpoint(o.Output)
		if err != nil || latest != ck {
			t.Fatalf("%s: latest checkpoint %q %v, want %s", crash.name, latest, err, ck)
		}
		for _, p := range []string{tmp, old} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s: %s left behind", crash.name, filepath.Base(p))
			}
		}
		resumed := newBigram(11)
		o2 := o
		o2.ResumeFrom = latest
		if _, err := fit(context.Background(), resumed, ex, nil, o2); err != nil {
			t.Fatalf("%s: resume: %v", crash.name, err)
		}
		if !reflect.DeepEqual(full.w.Data, resumed.w.Data) {
			t.Errorf("%s: resumed weights differ from the uninterrupted run", crash.name)
		}
	}
}

// TestSaveErrorSaysItOnce: a failing save reports "saving adapter" once, not once per
// layer of wrapping.
func TestSaveErrorSaysItOnce(t *testing.T) {
	m, _ := tinyEngine(t)
	o := opts(t)
	o.MaxSteps = 1
	// A directory where the adapter's weights go: the save must fail.
	if err := os.Mkdir(filepath.Join(o.Output, "adapter_model.safetensors"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := fit(context.Background(), m, corpus(8, 11), nil, o)
	if err == nil {
		t.Fatal("saving over a directory succeeded")
	}
	if n := strings.Count(err.Error(), "saving adapter"); n != 1 {
		t.Errorf("%q says saving adapter %d times", err, n)
	}
}

// TestAllLabelsMaskedStops: data in which no label carries loss is an error, not an
// endless walk over empty epochs.
func TestAllLabelsMaskedStops(t *testing.T) {
	ex := corpus(6, 11)
	for i := range ex {
		for j := range ex[i].Labels {
			ex[i].Labels[j] = dataset.IgnoreIndex
		}
	}
	var nd *NoDataError
	if _, err := fit(context.Background(), newBigram(11), ex, nil, opts(t)); !errors.As(err, &nd) || !nd.NoLoss {
		t.Fatalf("want a NoDataError (no loss), got %v", err)
	}
}
