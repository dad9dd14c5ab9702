// Package catalog lists the base models bidora recommends, with the exact
// architecture facts of their config.json files, so that memory can be planned
// and benchmarks shaped without downloading anything.
package catalog

import (
	"strings"

	"github.com/bidora/bidora/modelcfg"
)

// Entry is one recommended base model.
type Entry struct {
	// ID is the HuggingFace repository id, e.g. "Qwen/Qwen2.5-Coder-7B-Instruct".
	ID string
	// Preset is a short lowercase name (e.g. "qwen2.5-coder-7b"); empty when the
	// model has none.
	Preset string
	// Family is the model family shown in tables ("Qwen2.5-Coder", "Llama 3.2", …).
	Family string
	// Config holds the config.json facts, with modelcfg's defaults filled in.
	Config modelcfg.Config
	// ContextLength is the context the model was trained for (max_position_embeddings).
	ContextLength int
	// Source says where the config.json facts were checked.
	Source string
}

// Params is the model's parameter count (tied embeddings counted once).
func (e Entry) Params() int64 { return e.Config.NumParams() }

// Entries returns the catalog in display order (a fresh copy each call).
func Entries() []Entry {
	out := make([]Entry, len(entries))
	for i, e := range entries {
		out[i] = e
		if e.Config.RopeScaling != nil {
			rs := *e.Config.RopeScaling
			out[i].Config.RopeScaling = &rs
		}
	}
	return out
}

// Find looks a model up by preset name or HF id, ignoring case.
func Find(nameOrID string) (Entry, bool) {
	for _, e := range Entries() {
		if strings.EqualFold(e.ID, nameOrID) || (e.Preset != "" && strings.EqualFold(e.Preset, nameOrID)) {
			return e, true
		}
	}
	return Entry{}, false
}

// Presets returns the preset names in catalog order.
func Presets() []string {
	var out []string
	for _, e := range entries {
		if e.Preset != "" {
			out = append(out, e.Preset)
		}
	}
	return out
}
