package train

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
)

// The real model satisfies the loop's seam directly.
var _ Model = (*model.Model)(nil)

func tinyEngine(t *testing.T) (*model.Model, *model.Model) { return tinyEngineDropout(t, 0.1) }

// tinyEngineDropout returns a tiny real model with a DoRA adapter (twice, for the
// callers that name the trained model and the model whose params they read).
func tinyEngineDropout(t *testing.T, dropout float64) (*model.Model, *model.Model) {
	t.Helper()
	cfg := &modelcfg.Config{ModelType: "qwen2", HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 4, VocabSize: 11, RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu"}
	m, err := model.New(cfg, model.Options{Seed: 5, Name: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddAdapters(model.AdapterConfig{Targets: []string{"all-linear"}, Rank: 2, Alpha: 4, Dropout: dropout, DoRA: true}); err != nil {
		t.Fatal(err)
	}
	return m, m
}

// TestEngineResumeIsBitExact runs the real engine (DoRA with dropout, so the dropout
// stream matters) through an interrupted and resumed run.
func TestEngineResumeIsBitExact(t *testing.T) {
	ex := corpus(16, 11)
	o := opts(t)
	o.Epochs, o.LR = 2, 1e-2
	ref, refModel := tinyEngine(t)
	want, err := fit(context.Background(), ref, ex, ex[:4], o)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := tinyEngine(t)
	o2 := opts(t)
	o2.Epochs, o2.LR = 2, 1e-2
	ctx, cancel := context.WithCancel(context.Background())
	o2.Log = &cancelAt{step: 3, cancel: cancel}
	if _, err := fit(ctx, part, ex, ex[:4], o2); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("want interruption, got %v", err)
	}
	resumed, resumedModel := tinyEngine(t)
	o3 := o2
	o3.Log, o3.ResumeFrom = nil, filepath.Join(o2.Output, "checkpoint-3")
	got, err := fit(context.Background(), resumed, ex, ex[:4], o3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(losses(want.History), losses(got.History)) {
		t.Fatalf("loss curves differ:\n%v\n%v", losses(want.History), losses(got.History))
	}
	for i, p := range refModel.Params() {
		if !reflect.DeepEqual(p.Data, resumedModel.Params()[i].Data) {
			t.Fatalf("%s differs after resume", p.Name)
		}
	}
}
