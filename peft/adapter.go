package peft

import (
	"errors"
	"fmt"
	"io"
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

// keyPrefix is what PEFT puts before the base model's own parameter names.
const keyPrefix = "base_model.model."

// Parts of an adapted projection, as they appear at the end of a key.
const (
	PartA         = "lora_A"
	PartB         = "lora_B"
	PartMagnitude = "lora_magnitude_vector"
)

// block gives the sub-module ("self_attn" or "mlp") holding a projection.
func block(proj string) (string, bool) {
	switch proj {
	case "q_proj", "k_proj", "v_proj", "o_proj":
		return "self_attn", true
	case "gate_proj", "up_proj", "down_proj":
		return "mlp", true
	}
	return "", false
}

// ModuleName is the base model's name of a projection, the name rank_pattern,
// alpha_pattern and target_modules are matched against:
// "model.layers.{layer}.{self_attn|mlp}.{proj}". It is "" for an unknown proj.
func ModuleName(layer int, proj string) string {
	b, ok := block(proj)
	if !ok || layer < 0 {
		return ""
	}
	return "model.layers." + strconv.Itoa(layer) + "." + b + "." + proj
}

func key(layer int, proj, suffix string) string {
	m := ModuleName(layer, proj)
	if m == "" {
		return ""
	}
	return keyPrefix + m + "." + suffix
}

// KeyA names the lora_A weight [r, in] of a projection, e.g.
// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
// ("" for an unknown projection).
func KeyA(layer int, proj string) string { return key(layer, proj, PartA+".weight") }

// KeyB names the lora_B weight [out, r] of a projection ("" if unknown).
func KeyB(layer int, proj string) string { return key(layer, proj, PartB+".weight") }

// KeyMagnitude names the DoRA magnitude vector [out] of a projection
// (PEFT saves it without a ".weight" suffix; "" if unknown).
func KeyMagnitude(layer int, proj string) string { return key(layer, proj, PartMagnitude) }

// Key is a parsed adapter tensor name.
type Key struct {
	Layer int
	Proj  string // q_proj … down_proj
	Part  string // PartA, PartB or PartMagnitude
}

// Module is the base model's name of the key's projection.
func (k Key) Module() string { return ModuleName(k.Layer, k.Proj) }

// String is the canonical tensor name.
func (k Key) String() string {
	switch k.Part {
	case PartA:
		return KeyA(k.Layer, k.Proj)
	case PartB:
		return KeyB(k.Layer, k.Proj)
	}
	return KeyMagnitude(k.Layer, k.Proj)
}

// ParseKey parses an adapter tensor name. It accepts the DoRA magnitude with
// or without a trailing ".weight" (older PEFT versions wrote it).
func ParseKey(name string) (Key, error) {
	bad := func(why string) (Key, error) {
		return Key{}, fmt.Errorf("tensor %q: %s; want base_model.model.model.layers.N.{self_attn|mlp}.PROJ.{lora_A.weight|lora_B.weight|lora_magnitude_vector}", name, why)
	}
	rest, ok := strings.CutPrefix(name, keyPrefix+"model.layers.")
	if !ok {
		return bad("not a decoder-layer adapter key")
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 4 {
		return bad("too few parts")
	}
	layer, err := strconv.Atoi(parts[0])
	if err != nil || layer < 0 || parts[0] != strconv.Itoa(layer) {
		return bad("layer index is not a non-negative integer")
	}
	k := Key{Layer: layer, Proj: parts[2]}
	b, ok := block(k.Proj)
	if !ok {
		return bad(fmt.Sprintf("unknown projection %q", k.Proj))
	}
	if parts[1] != b {
		return bad(fmt.Sprintf("%s belongs to %s, not %s", k.Proj, b, parts[1]))
	}
	switch strings.Join(parts[3:], ".") {
	case PartA + ".weight":
		k.Part = PartA
	case PartB + ".weight":
		k.Part = PartB
	case PartMagnitude, PartMagnitude + ".weight":
		k.Part = PartMagnitude
	default:
		return bad(fmt.Sprintf("unsupported tensor %q", strings.Join(parts[3:], ".")))
	}
	return k, nil
}

// Tensor is an adapter tensor in float32.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Load reads an adapter directory: its config and every tensor of
// adapter_model.safetensors as float32 (F32, BF16 and F16 are accepted),
// keyed by canonical name (see Key.String). It checks that every key is well
// formed, that each adapted module has both lora_A and lora_B (and a magnitude
// exactly when use_dora), and that shapes agree with the module's rank.
func Load(dir string) (*Config, map[string]Tensor, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, WeightsFileName)
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading adapter weights: %w", err)
	}
	defer f.Close()
	tensors := map[string]Tensor{}
	for _, name := range f.Names() {
		k, err := ParseKey(name)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		info, _ := f.Info(name)
		switch info.DType {
		case safetensors.F32, safetensors.BF16, safetensors.F16:
		default:
			return nil, nil, fmt.Errorf("%s: tensor %q has dtype %s; want F32, BF16 or F16", path, name, info.DType)
		}
		vals, err := f.Float32(name)
		if err != nil {
			return nil, nil, err
		}
		canon := k.String()
		if _, dup := tensors[canon]; dup {
			return nil, nil, fmt.Errorf("%s: tensor %q appears twice (with and without .weight)", path, canon)
		}
		// Copy: the view would be invalid once the file is closed.
		tensors[canon] = Tensor{Shape: info.Shape, Data: slices.Clone(vals)}
	}
	shapes := make(map[string][]int, len(tensors))
	for n, t := range tensors {
		shapes[n] = t.Shape
	}
	if err := Check(cfg, shapes, nil); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, tensors, nil
}

// Check verifies a set of adapter tensor shapes (by name) against cfg: keys
// well formed, A and B present for every adapted module, magnitude present
// exactly when use_dora, A [r, in], B [out, r], magnitude [out], r as RankFor
// gives, and the module selected by target_modules. When model is not nil,
// in, out and the layer index are checked against it too.
func Check(cfg *Config, shapes map[string][]int, model *modelcfg.Config) error {
	type mod struct {
		a, b, m []int
		hasM    bool
	}
	mods := map[string]*mod{}
	keys := map[string]Key{}
	for name, shape := range shapes {
		k, err := ParseKey(name)
		if err != nil {
			return err
		}
		m := k.Module()
		if mods[m] == nil {
			mods[m] = &mod{}
			keys[m] = k
		}
		switch k.Part {
		case PartA:
			mods[m].a = shape
		case PartB:
			mods[m].b = shape
		case PartMagnitude:
			mods[m].m, mods[m].hasM = shape, true
		}
	}
	names := make([]string, 0, len(mods))
	for m := range mods {
		names = append(names, m)
	}
	sort.Strings(names)
	var errs []error
	for _, m := range names {
		t, k := mods[m], keys[m]
		r := cfg.RankFor(m)
		switch {
		case !cfg.Targets(m):
			errs = append(errs, fmt.Errorf("%s has adapter weights but target_modules %v does not select it", m, cfg.TargetModules))
			continue
		case t.a == nil:
			errs = append(errs, fmt.Errorf("%s has no %s", m, KeyA(k.Layer, k.Proj)))
			continue
		case t.b == nil:
			errs = append(errs, fmt.Errorf("%s has no %s", m, KeyB(k.Layer, k.Proj)))
			continue
		case cfg.UseDora && !t.hasM:
			errs = append(errs, fmt.Errorf("use_dora is true but %s has no %s", m, KeyMagnitude(k.Layer, k.Proj)))
			continue
		case !cfg.UseDora && t.hasM:
			errs = append(errs, fmt.Errorf("%s has a DoRA magnitude but use_dora is false", m))
			continue
		}
		if len(t.a) != 2 || t.a[0] != r {
			errs = append(errs, fmt.Errorf("%s: lora_A has shape %v, want [%d, in] (rank %d)", m, t.a, r, r))
			continue
		}
		if len(t.b) != 2 || t.b[1] != r {
			errs = append(errs, fmt.Errorf("%s: lora_B has shape %v, want [out, %d] (rank %d)", m, t.b, r, r))
			continue
		}
		if t.hasM && (len(t.m) != 1 || t.m[0] != t.b[0]) {
			errs = append(errs, fmt.Errorf("%s: lora_magnitude_vector has shape %v, want [%d] (lora_B's out)", m, t.m, t.b[0]))
			continue
		}
		if model != nil {
			out, in, _ := model.ProjShape(k.Proj)
			if k.Layer >= model.NumHiddenLayers {
				errs = append(errs, fmt.Errorf("%s: layer %d is past the model's %d layers", m, k.Layer, model.NumHiddenLayers))
			} else if t.a[1] != in || t.b[0] != out {
				errs = append(errs, fmt.Errorf("%s: lora_A %v and lora_B %v do not fit the model's [%d, %d] %s", m, t.a, t.b, out, in, k.Proj))
			}
		}
	}
	if len(mods) == 0 {
		errs = append(errs, errors.New("adapter has no tensors"))
	}
	return errors.Join(errs...)
}

// ToTensors encodes float32 adapter tensors for Save, in dtype dt (PEFT
// itself saves adapters in F32).
func ToTensors(tensors map[string]Tensor, dt safetensors.DType) ([]safetensors.Tensor, error) {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]safetensors.Tensor, 0, len(names))
	for _, n := range names {
		t, err := safetensors.NewTensor(n, dt, tensors[n].Shape, tensors[n].Data)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Save writes an adapter directory (created if needed), after checking it as
// Load does: adapter_model.safetensors and adapter_config.json are written as
// a set (atomicfile.WriteSet), so a failure while writing either (a full disk,
// say) leaves neither new file visible and an earlier adapter in dir intact.
// Existing files there must be regular files; a symlink or special file is
// refused, not replaced. Floating-point tensors must be F32, BF16 or F16.
func Save(dir string, cfg *Config, tensors []safetensors.Tensor) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("saving adapter to %s: %w", dir, err)
	}
	shapes := make(map[string][]int, len(tensors))
	for _, t := range tensors {
		switch t.DType {
		case safetensors.F32, safetensors.BF16, safetensors.F16:
		default:
			return fmt.Errorf("saving adapter to %s: tensor %q has dtype %s; want F32, BF16 or F16", dir, t.Name, t.DType)
		}
		if _, dup := shapes[t.Name]; dup {
			return fmt.Errorf("saving adapter to %s: tensor %q appears twice", dir, t.Name)
		}
		shapes[t.Name] = t.Shape
	}
	if err := Check(cfg, shapes, nil); err != nil {
		return fmt.Errorf("saving adapter to %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("saving adapter: %w", err)
	}
	cfgData, err := cfg.encode()
	if err != nil {
		return fmt.Errorf("saving adapter to %s: %w", dir, err)
	}
	err = atomicfile.WriteSet(dir, []atomicfile.File{
		{Name: WeightsFileName, Write: func(w io.Writer) error {
			return safetensors.Encode(w, tensors, map[string]string{"format": "pt"})
		}},
		{Name: ConfigFileName, Write: func(w io.Writer) error {
			_, err := w.Write(cfgData)
			return err
		}},
	})
	if err != nil {
		return fmt.Errorf("saving adapter: %w", err)
	}
	return nil
}
