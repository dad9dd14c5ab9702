package peft

import (
	"bytes"
	"github.com/bidora/bidora/internal/testutil"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary bytes to ParseConfig as adapter_config.json.
// An accepted config must validate, give every projection a positive rank and
// a finite positive scale, and survive a round trip through MarshalJSON (the
// patterns come back sorted by key, as PEFT saves them); writing it again
// gives the same bytes. Parsing must not allocate far more than the input.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		recentPEFT,
		`{"peft_type":"LORA","target_modules":"all-linear","init_lora_weights":"gaussian","task_type":null}`,
		`{"peft_type":"LORA","task_type":"CAUSAL_LM","r":4,"lora_alpha":8,"target_modules":["q_proj","v_proj"],"use_dora":true,"rank_pattern":{"v_proj":2,"layers\\.0\\..*":3},"alpha_pattern":{"q_proj":0.5}}`,
		`{"peft_type":"LORA","target_modules":["q_proj"],"rank_pattern":{"(":2}}`,
		`{"peft_type":"LORA","target_modules":["q_proj"],"rank_pattern":{"q_proj":2.5}}`,
		`{"peft_type":"LORA","target_modules":["q_proj"],"modules_to_save":["lm_head"]}`,
		`{"peft_type":"LORA","target_modules":"q_proj|v_proj"}`,
		`{"peft_type":"IA3","target_modules":["q_proj"]}`,
		`{"peft_type":"LORA","target_modules":[""],"lora_dropout":1}`,
		`{`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c *Config
		var err error
		if n := testutil.AllocBytes(func() { c, err = ParseConfig(data) }); n > 64*uint64(len(data))+1<<20 {
			t.Fatalf("ParseConfig of %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			if c != nil {
				t.Fatal("ParseConfig returned a config and an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		for layer := range 2 {
			for _, p := range []string{"q_proj", "down_proj"} {
				m := ModuleName(layer, p)
				if r := c.RankFor(m); r <= 0 {
					t.Fatalf("RankFor(%s) = %d", m, r)
				}
				if s := c.ScaleFor(m); !(s > 0) || math.IsInf(s, 0) {
					t.Fatalf("ScaleFor(%s) = %v", m, s)
				}
			}
		}
		out, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of an accepted config: %v", err)
		}
		c2, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parsing the written config: %v\n%s", err, out)
		}
		want := *c
		for _, ps := range []*Patterns{&want.RankPattern, &want.AlphaPattern} {
			*ps = slices.Clone(*ps)
			slices.SortStableFunc(*ps, func(a, b Pattern) int { return strings.Compare(a.Key, b.Key) })
		}
		normalize := func(c *Config) {
			if len(c.RankPattern) == 0 {
				c.RankPattern = nil
			}
			if len(c.AlphaPattern) == 0 {
				c.AlphaPattern = nil
			}
			if len(c.ModulesToSave) == 0 {
				c.ModulesToSave = nil
			}
		}
		normalize(&want)
		normalize(c2)
		if !reflect.DeepEqual(*c2, want) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", *c2, want)
		}
		out2, err := c2.MarshalJSON()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second write differs (%v):\n%s\n%s", err, out, out2)
		}
	})
}

// FuzzParseKey checks ParseKey on arbitrary tensor names: an accepted name
// maps to a key whose canonical name parses back to the same key, and the
// canonical name is the input itself except for the old DoRA magnitude form.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		KeyA(3, "q_proj"), KeyB(0, "down_proj"), KeyMagnitude(12, "o_proj"),
		"base_model.model.model.layers.1.mlp.up_proj.lora_magnitude_vector.weight",
		"base_model.model.model.layers.01.mlp.up_proj.lora_A.weight",
		"base_model.model.model.layers.-1.mlp.up_proj.lora_A.weight",
		"base_model.model.model.layers.0.mlp.q_proj.lora_A.weight",
		"base_model.model.lm_head.lora_A.weight",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		k, err := ParseKey(name)
		if err != nil {
			if k != (Key{}) {
				t.Fatalf("ParseKey(%q) returned %+v with an error", name, k)
			}
			return
		}
		canon := k.String()
		if canon == "" || k.Module() == "" {
			t.Fatalf("ParseKey(%q) = %+v with no canonical name", name, k)
		}
		if canon != name && !(k.Part == PartMagnitude && canon+".weight" == name) {
			t.Fatalf("ParseKey(%q) = %+v, canonical name %q", name, k, canon)
		}
		if k2, err := ParseKey(canon); err != nil || k2 != k {
			t.Fatalf("ParseKey(%q) = %+v, %v; want %+v", canon, k2, err, k)
		}
	})
}

// TestRankPatternTooLarge is a fuzz finding: a rank_pattern value too large
// for an int was accepted and RankFor turned it into a negative rank.
func TestRankPatternTooLarge(t *testing.T) {
	for _, v := range []string{"1e300", "4294967296", "9.3e18"} {
		_, err := ParseConfig([]byte(`{"peft_type":"LORA","target_modules":["q_proj"],"rank_pattern":{"q_proj":` + v + `}}`))
		if err == nil || !strings.Contains(err.Error(), "rank_pattern") {
			t.Errorf("rank_pattern %s: err = %v", v, err)
		}
	}
	c, err := ParseConfig([]byte(`{"peft_type":"LORA","target_modules":["q_proj"],"rank_pattern":{"q_proj":2147483647}}`))
	if err != nil || c.RankFor("model.layers.0.self_attn.q_proj") != math.MaxInt32 {
		t.Errorf("largest rank: %v", err)
	}
}
