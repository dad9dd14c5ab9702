// Package chattemplate renders a model's chat template — the Jinja
// `chat_template` in its tokenizer_config.json — for a list of messages,
// producing exactly the text HF transformers' apply_chat_template produces.
//
// transformers renders with a jinja2 ImmutableSandboxedEnvironment with
// trim_blocks and lstrip_blocks on, the loopcontrols extension
// ({% break %}, {% continue %}), a {% generation %} block tag, a tojson filter
// that does not escape non-ASCII or HTML characters (and accepts indent,
// separators, sort_keys, ensure_ascii), and the globals raise_exception and
// strftime_now. The variables are the tokenizer's special tokens (bos_token,
// eos_token, unk_token, pad_token, …, additional_special_tokens; only those
// set), then the caller's extra variables, then messages, tools, documents
// and add_generation_prompt. This package reproduces all of that.
//
// # Why a built-in interpreter
//
// The Go Jinja libraries tried do not render these templates exactly:
// github.com/ardanlabs/jinja (v1.8.0) failed 44 of 396 golden renders
// (floats 1.0 printed as 1, tojson(indent=…) sorting keys and escaping <, >
// and &, indexing past the end of a list not failing, no divisibleby test),
// and github.com/nikolalohinski/gonja/v2 has no insertion-ordered mappings, so
// `tools | tojson` cannot keep key order. The package therefore contains a
// small Jinja interpreter for the subset chat templates use: text with
// whitespace control ('-' and '+', trim_blocks, lstrip_blocks), comments,
// raw blocks, if/elif/else, for (tuple unpacking, inline `if` filter, else,
// loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem/
// cycle, break/continue), set (including namespace attributes, tuple
// unpacking and block set), macros, the full expression grammar (literals,
// lists, tuples, dicts, attribute and item access, slicing, calls with
// keyword arguments, arithmetic, comparisons, in / not in, and/or/not, ~,
// conditional expressions), the common filters and tests, Python string,
// dict and list methods, and Python's str()/repr() of values. Values have
// Python semantics (undefined values, truthiness, int vs float, code-point
// string indexing, insertion-ordered dicts).
//
// Anything outside that subset — an unknown tag, filter or test, or a
// method the package does not implement — is a *SyntaxError or *RenderError
// naming the template line; it never renders silently wrong. The golden
// tests in testdata were produced by Python jinja2 (see
// tools/goldens/chattemplate/gen.py).
package chattemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bidora/bidora/internal/metafile"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoTemplate is returned by Render when the tokenizer has no chat template.
var ErrNoTemplate = errors.New("tokenizer has no chat_template")

// Message is one chat turn.
type Message struct {
	Role    string
	Content string
	// Optional fields; each is passed to the template only when non-empty.
	ReasoningContent string     // "reasoning_content" (Qwen3 style thinking)
	ToolCalls        []ToolCall // "tool_calls"
	ToolCallID       string     // "tool_call_id" (role "tool")
	Name             string     // "name"
	// Extra holds further keys of the message as JSON values, for example
	// from a dataset row; a key here replaces the field of the same name
	// (so "content": null is expressible). Keys are added in sorted order.
	Extra map[string]json.RawMessage
}

// ToolCall is an assistant's function call, passed to the template as
// {"id", "type", "function": {"name", "arguments"}} (id and type only when set).
type ToolCall struct {
	ID       string
	Type     string
	Function FunctionCall
}

// FunctionCall names the function and its arguments: a JSON object
// (json.RawMessage keeps key order), a Go map or struct, or a string.
type FunctionCall struct {
	Name      string
	Arguments any
}

// UnmarshalJSON reads a message object such as
// {"role": "user", "content": "hi"}. String-valued role, content,
// reasoning_content, tool_call_id and name fill the fields; every other key
// (and any of those with a non-string value, e.g. "content": null) goes
// to Extra verbatim, tool_calls included.
func (m *Message) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*m = Message{}
	fields := map[string]*string{"role": &m.Role, "content": &m.Content,
		"reasoning_content": &m.ReasoningContent, "tool_call_id": &m.ToolCallID, "name": &m.Name}
	for k, v := range raw {
		if dst, ok := fields[k]; ok && len(v) > 0 && v[0] == '"' {
			var s string
			if json.Unmarshal(v, &s) == nil {
				*dst = s
				continue
			}
		}
		if m.Extra == nil {
			m.Extra = map[string]json.RawMessage{}
		}
		m.Extra[k] = v
	}
	if m.Role == "" {
		if _, ok := m.Extra["role"]; !ok {
			return fmt.Errorf("message has no \"role\"")
		}
	}
	return nil
}

// Options are the variables of a render beyond the messages.
type Options struct {
	AddGenerationPrompt bool
	// Tools are JSON schemas of the available functions (nil: none). Each
	// is a json.RawMessage (key order kept) or any Go value encoding/json
	// can marshal.
	Tools []any
	// Documents for retrieval-augmented templates (nil: none).
	Documents []any
	// Vars are extra template variables, such as "enable_thinking": false
	// or "date_string"; they override the special tokens of the same name.
	Vars map[string]any
	// Now is the time strftime_now formats; zero means time.Now().
	Now time.Time
	// TemplateName picks a named template when tokenizer_config.json has a
	// list of them; "" means "tool_use" when Tools are given and that
	// template exists, else "default" (as transformers does).
	TemplateName string
}

// Template is a parsed chat template with the tokenizer's special tokens.
type Template struct {
	named   map[string][]node
	order   []string
	special map[string]value
	bos     string
	eos     string
	source  string // where it was loaded from, for messages
}

// Load reads tokenizer_config.json from a model directory, or the file
// itself when dirOrPath is a file. A chat_template.jinja beside it, as newer
// transformers saves, takes precedence over the config's chat_template.
// A tokenizer without a template loads fine: HasTemplate reports false.
func Load(dirOrPath string) (*Template, error) {
	path := dirOrPath
	if st, err := os.Stat(dirOrPath); err == nil && st.IsDir() {
		path = filepath.Join(dirOrPath, "tokenizer_config.json")
	}
	data, err := metafile.Read(path, metafile.MaxJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("reading tokenizer config: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.source = path
	jinjaPath := filepath.Join(filepath.Dir(path), "chat_template.jinja")
	if src, err := os.ReadFile(jinjaPath); err == nil {
		nodes, err := parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", jinjaPath, err)
		}
		t.named = map[string][]node{"default": nodes}
		t.order = []string{"default"}
		t.source = jinjaPath
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", jinjaPath, err)
	}
	return t, nil
}

var specialKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
	"cls_token", "mask_token", "additional_special_tokens"}

// Parse reads the contents of a tokenizer_config.json.
func Parse(tokenizerConfig []byte) (*Template, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(tokenizerConfig, &cfg); err != nil {
		return nil, fmt.Errorf("parsing tokenizer config JSON: %w", err)
	}
	t := &Template{named: map[string][]node{}, special: map[string]value{}}
	for _, k := range specialKeys {
		raw, ok := cfg[k]
		if !ok {
			continue
		}
		v, err := decodeJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		tok, err := specialValue(k, v)
		if err != nil {
			return nil, err
		}
		if truthy(tok) {
			t.special[k] = tok
		}
	}
	t.bos, _ = t.special["bos_token"].(string)
	t.eos, _ = t.special["eos_token"].(string)

	raw, ok := cfg["chat_template"]
	if !ok || string(raw) == "null" {
		return t, nil
	}
	var single string
	if err := json.Unmarshal(raw, &single); err == nil {
		nodes, err := parse(single)
		if err != nil {
			return nil, fmt.Errorf("chat_template: %w", err)
		}
		t.named["default"] = nodes
		t.order = []string{"default"}
		return t, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("field chat_template: expected a string or a list of {name, template}: %w", err)
	}
	for _, nt := range list {
		nodes, err := parse(nt.Template)
		if err != nil {
			return nil, fmt.Errorf("chat_template %q: %w", nt.Name, err)
		}
		t.named[nt.Name] = nodes
		t.order = append(t.order, nt.Name)
	}
	return t, nil
}

// specialValue turns a special-token field (a string, an AddedToken object
// {"content": …}, or for additional_special_tokens a list of those) into
// the string(s) the template sees.
func specialValue(key string, v value) (value, error) {
	content := func(v value) (value, error) {
		switch x := v.(type) {
		case nil, string:
			return x, nil
		case *dict:
			if c, ok := x.get("content"); ok {
				if s, ok := c.(string); ok {
					return s, nil
				}
			}
		}
		return nil, fmt.Errorf("field %s: expected a string or an AddedToken object with \"content\", got %s", key, repr(v))
	}
	if l, ok := v.(*list); ok && key == "additional_special_tokens" {
		out := &list{}
		for _, it := range l.items {
			s, err := content(it)
			if err != nil {
				return nil, err
			}
			out.items = append(out.items, s)
		}
		return out, nil
	}
	return content(v)
}

// HasTemplate reports whether the tokenizer has a chat template.
func (t *Template) HasTemplate() bool { return len(t.named) > 0 }

// Names lists the template names (["default"] for a single template).
func (t *Template) Names() []string { return append([]string(nil), t.order...) }

// BOS returns the bos_token string ("" when unset).
func (t *Template) BOS() string { return t.bos }

// EOS returns the eos_token string ("" when unset).
func (t *Template) EOS() string { return t.eos }

// SpecialToken returns a special token by its config key (e.g. "pad_token").
func (t *Template) SpecialToken(key string) (string, bool) {
	s, ok := t.special[key].(string)
	return s, ok
}

// Render renders the messages; addGenerationPrompt appends the header of
// the assistant's next turn where the template supports it.
func (t *Template) Render(messages []Message, addGenerationPrompt bool) (string, error) {
	return t.RenderOptions(messages, Options{AddGenerationPrompt: addGenerationPrompt})
}

// RenderOptions renders the messages with extra variables.
func (t *Template) RenderOptions(messages []Message, opts Options) (string, error) {
	if !t.HasTemplate() {
		return "", ErrNoTemplate
	}
	name := opts.TemplateName
	if name == "" {
		name = "default"
		if _, ok := t.named["tool_use"]; ok && opts.Tools != nil {
			name = "tool_use"
		}
		if _, ok := t.named[name]; !ok && len(t.order) == 1 {
			name = t.order[0]
		}
	}
	nodes, ok := t.named[name]
	if !ok {
		return "", fmt.Errorf("chat template %q not found (have %s)", name, strings.Join(t.order, ", "))
	}

	vars := map[string]value{}
	for k, v := range t.special {
		vars[k] = v
	}
	for k, v := range opts.Vars {
		switch k {
		case "messages", "tools", "documents", "add_generation_prompt":
			return "", fmt.Errorf("variable %q must be passed through its own argument", k)
		}
		cv, err := fromGo(v)
		if err != nil {
			return "", fmt.Errorf("variable %q: %w", k, err)
		}
		vars[k] = cv
	}
	msgs := &list{}
	for i, m := range messages {
		mv, err := messageValue(m)
		if err != nil {
			return "", fmt.Errorf("message %d: %w", i, err)
		}
		msgs.items = append(msgs.items, mv)
	}
	vars["messages"] = msgs
	for k, src := range map[string][]any{"tools": opts.Tools, "documents": opts.Documents} {
		if src == nil {
			vars[k] = nil
			continue
		}
		l := &list{}
		for i, x := range src {
			v, err := fromGo(x)
			if err != nil {
				return "", fmt.Errorf("%s[%d]: %w", k, i, err)
			}
			l.items = append(l.items, v)
		}
		vars[k] = l
	}
	vars["add_generation_prompt"] = opts.AddGenerationPrompt

	now := time.Now
	if !opts.Now.IsZero() {
		now = func() time.Time { return opts.Now }
	}
	root := &scope{vars: globals(now)}
	top := &scope{vars: vars, parent: root}
	var out strings.Builder
	r := &renderer{out: &out, st: &state{}}
	if err := r.nodes(nodes, top); err != nil {
		if err == errBreak || err == errContinue {
			return "", fmt.Errorf("chat template: break or continue outside a loop")
		}
		return "", err
	}
	return out.String(), nil
}

func messageValue(m Message) (value, error) {
	d := newDict()
	d.set("role", m.Role)
	d.set("content", m.Content)
	if m.ReasoningContent != "" {
		d.set("reasoning_content", m.ReasoningContent)
	}
	if len(m.ToolCalls) > 0 {
		l := &list{}
		for _, tc := range m.ToolCalls {
			c := newDict()
			if tc.ID != "" {
				c.set("id", tc.ID)
			}
			if tc.Type != "" {
				c.set("type", tc.Type)
			}
			f := newDict()
			f.set("name", tc.Function.Name)
			args, err := fromGo(tc.Function.Arguments)
			if err != nil {
				return nil, fmt.Errorf("tool call %s arguments: %w", tc.Function.Name, err)
			}
			f.set("arguments", args)
			c.set("function", f)
			l.items = append(l.items, c)
		}
		d.set("tool_calls", l)
	}
	if m.ToolCallID != "" {
		d.set("tool_call_id", m.ToolCallID)
	}
	if m.Name != "" {
		d.set("name", m.Name)
	}
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		v, err := decodeJSON(m.Extra[k])
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		d.set(k, v)
	}
	return d, nil
}
