package chattemplate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzTime is the clock strftime_now sees in the fuzz targets, so that
// renders are comparable.
var fuzzTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fuzzRenderLimit is far more than any template the fuzzer builds needs; a
// render running longer means a limit in the evaluator is missing.
const fuzzRenderLimit = 20 * time.Second

// FuzzParseConfig feeds arbitrary tokenizer_config.json content to Parse and
// renders every template of an accepted config. Rendering must return (an
// error or text) within a bounded time and output size, be deterministic, and
// BOS/EOS must agree with the special tokens.
func FuzzParseConfig(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "templates", "*", "tokenizer_config.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) < 8<<10 {
			f.Add(data)
		}
	}
	for _, s := range []string{
		`{"bos_token":"<s>","eos_token":{"content":"</s>","lstrip":false},"chat_template":"{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"}`,
		`{"additional_special_tokens":["<a>",{"content":"<b>"}],"chat_template":[{"name":"default","template":"{{ additional_special_tokens|join(',') }}"},{"name":"tool_use","template":"{{ tools|tojson }}"}]}`,
		`{"chat_template":"{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(1000) }}"}`,
		`{"chat_template":"{{ 'x' * 100000000 }}"}`,
		`{"chat_template":"{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"}`,
		`{"eos_token":7}`,
		`{"chat_template":null}`,
		`{"chat_template":"{% if %}"}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	msgs := []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"},
		{Role: "assistant", Content: "<think>r</think>a", ToolCalls: []ToolCall{{ID: "1", Type: "function", Function: FunctionCall{Name: "f", Arguments: json.RawMessage(`{"x":1}`)}}}},
		{Role: "tool", Content: "out", ToolCallID: "1"}, {Role: "user", Content: "again"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		tmpl, err := Parse(data)
		if err != nil {
			if tmpl != nil {
				t.Fatal("Parse returned a template and an error")
			}
			return
		}
		if s, _ := tmpl.SpecialToken("bos_token"); s != tmpl.BOS() {
			t.Fatalf("BOS() = %q, bos_token %q", tmpl.BOS(), s)
		}
		if s, _ := tmpl.SpecialToken("eos_token"); s != tmpl.EOS() {
			t.Fatalf("EOS() = %q, eos_token %q", tmpl.EOS(), s)
		}
		if tmpl.HasTemplate() != (len(tmpl.Names()) > 0) {
			t.Fatalf("HasTemplate() = %v with names %q", tmpl.HasTemplate(), tmpl.Names())
		}
		for _, name := range tmpl.Names() {
			opts := Options{AddGenerationPrompt: true, Now: fuzzTime, TemplateName: name,
				Tools: []any{json.RawMessage(`{"type":"function","function":{"name":"f","parameters":{}}}`)}}
			start := time.Now()
			out, err := tmpl.RenderOptions(msgs, opts)
			if d := time.Since(start); d > fuzzRenderLimit {
				t.Fatalf("template %q rendered for %v", name, d)
			}
			if len(out) > maxOutput {
				t.Fatalf("template %q rendered %d bytes, over the %d limit", name, len(out), maxOutput)
			}
			if err != nil {
				continue
			}
			again, err := tmpl.RenderOptions(msgs, opts)
			if err != nil || again != out {
				t.Fatalf("template %q rendered %q, then %q (%v)", name, out, again, err)
			}
		}
	})
}

// chatML is the ChatML template (as the built-in test tokenizer has it).
const chatML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// FuzzRenderMessages renders messages built from arbitrary strings, as
// dataset rows supply them, through ChatML and through the real templates of
// testdata. ChatML must give exactly the text its definition says (message
// text is data, never evaluated as template code); the real templates must
// return text or an error, never panic.
func FuzzRenderMessages(f *testing.F) {
	f.Add("user", "hello {{ 1 + 1 }} {% if %}", "name", []byte(`"bob"`), true)
	f.Add("assistant", "<think>\nx\n</think>\n\ny", "content", []byte(`null`), false)
	f.Add("system", "", "tool_calls", []byte(`[{"type":"function","function":{"name":"f","arguments":{"a":[1,2]}}}]`), true)
	f.Add("tool", "\xff\xfe", "reasoning_content", []byte(`{"a":{"b":[]}}`), false)
	f.Add("", "{{ raise_exception('x') }}", "", []byte(`1e999`), true)
	var tmpls []*Template
	paths, _ := filepath.Glob(filepath.Join("testdata", "templates", "*", "tokenizer_config.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if tmpl, err := Parse(data); err == nil && tmpl.HasTemplate() {
			tmpls = append(tmpls, tmpl)
		}
	}
	cfg, _ := json.Marshal(map[string]string{"chat_template": chatML})
	chat, err := Parse(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, role, content, extraKey string, extraVal []byte, gen bool) {
		plain := []Message{{Role: "system", Content: "sys"}, {Role: role, Content: content}}
		out, err := chat.RenderOptions(plain, Options{AddGenerationPrompt: gen, Now: fuzzTime})
		want := "<|im_start|>system\nsys<|im_end|>\n<|im_start|>" + role + "\n" + content + "<|im_end|>\n"
		if gen {
			want += "<|im_start|>assistant\n"
		}
		if err != nil || out != want {
			t.Fatalf("ChatML render = %q, %v; want %q", out, err, want)
		}
		m := Message{Role: role, Content: content}
		if extraKey != "" && json.Valid(extraVal) {
			m.Extra = map[string]json.RawMessage{extraKey: extraVal}
		}
		msgs := []Message{{Role: "system", Content: "sys"}, {Role: "user", Content: "u"}, m}
		for _, tmpl := range tmpls {
			start := time.Now()
			out, _ := tmpl.RenderOptions(msgs, Options{AddGenerationPrompt: gen, Now: fuzzTime})
			if d := time.Since(start); d > fuzzRenderLimit || len(out) > maxOutput {
				t.Fatalf("render took %v and gave %d bytes", d, len(out))
			}
		}
	})
}
