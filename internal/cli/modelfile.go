package cli

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// An Ollama Modelfile written beside a GGUF export, so that
// `ollama create NAME -f Modelfile` is the next command.

// ollamaChat is a chat-template family with its Ollama TEMPLATE (Go
// text/template over .System and .Messages, as Ollama renders it) and its
// end-of-turn marker.
type ollamaChat struct {
	family    string
	template  string
	endOfTurn string
}

var (
	chatMLTemplate = ollamaChat{"ChatML (Qwen)", `{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}{{ if ne .Role "system" }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}{{ end }}<|im_start|>assistant
`, "<|im_end|>"}

	llama3Template = ollamaChat{"Llama 3", `{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>
{{- end }}
{{- range .Messages }}{{ if ne .Role "system" }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}{{ end }}<|start_header_id|>assistant<|end_header_id|>

`, "<|eot_id|>"}

	// Llama 2 puts the system prompt in <<SYS>> inside the first [INST] and
	// ends each exchange with EOS, the next starting with BOS (the first BOS
	// is llama.cpp's).
	llama2Template = ollamaChat{"Llama 2 [INST] <<SYS>>", `{{- $first := true }}
{{- range .Messages }}
{{- if eq .Role "user" }}{{ if not $first }}<s>{{ end }}[INST] {{ if and $first $.System }}<<SYS>>
{{ $.System }}
<</SYS>>

{{ end }}{{ .Content }} [/INST]{{ $first = false }}
{{- else if eq .Role "assistant" }} {{ .Content }} </s>
{{- end }}
{{- end }}`, ""}

	// Mistral has no system role: the system prompt leads the first [INST].
	mistralTemplate = ollamaChat{"Mistral [INST]", `{{- $first := true }}
{{- range .Messages }}
{{- if eq .Role "user" }}[INST] {{ if and $first $.System }}{{ $.System }}

{{ end }}{{ .Content }}[/INST]{{ $first = false }}
{{- else if eq .Role "assistant" }} {{ .Content }}</s>
{{- end }}
{{- end }}`, ""}
)

// ollamaTemplateFor recognises the family of a Hugging Face chat template
// (Jinja, from tokenizer_config.json) by the markers it writes; ok is false
// for an empty or unrecognised one.
func ollamaTemplateFor(chatTemplate string) (c ollamaChat, ok bool) {
	switch {
	case chatTemplate == "":
		return ollamaChat{}, false
	case strings.Contains(chatTemplate, "<|im_start|>") && strings.Contains(chatTemplate, "<|im_end|>"):
		return chatMLTemplate, true
	case strings.Contains(chatTemplate, "<|start_header_id|>") && strings.Contains(chatTemplate, "<|eot_id|>"):
		return llama3Template, true
	case strings.Contains(chatTemplate, "[INST]") && strings.Contains(chatTemplate, "<<SYS>>"):
		return llama2Template, true
	case strings.Contains(chatTemplate, "[INST]"):
		return mistralTemplate, true
	}
	return ollamaChat{}, false
}

// defaultSystem finds the system prompt a ChatML template writes when the
// conversation has none (Qwen2.5's '<|im_start|>system\nYou are …<|im_end|>\n'
// as one string literal), or "".
var defaultSystemRE = regexp.MustCompile(`['"]<\|im_start\|>system\\n([^'"{}\\]+)<\|im_end\|>`)

func defaultSystem(chatTemplate string) string {
	if m := defaultSystemRE.FindStringSubmatch(chatTemplate); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}

// modelfileInput is what a Modelfile is made of.
type modelfileInput struct {
	GGUF          string   // the GGUF file's name, relative to the Modelfile
	ChatTemplate  string   // the model's Jinja chat template, or ""
	EOS           []string // the model's end-of-sequence tokens' text
	ContextLength int      // max_position_embeddings
}

// ollamaModelfile writes an Ollama Modelfile for in: FROM the GGUF, a
// TEMPLATE (the chat family's, else the raw prompt), PARAMETER stop for the
// end-of-turn and end-of-sequence tokens and sampling defaults. note says
// what a user should know (an unrecognised template), or is "".
func ollamaModelfile(in modelfileInput) (text, note string) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Ollama Modelfile written by bidora export: ollama create NAME -f Modelfile\n")
	fmt.Fprintf(&b, "FROM ./%s\n\n", in.GGUF)
	chat, ok := ollamaTemplateFor(in.ChatTemplate)
	stops := slices.Clone(in.EOS)
	switch {
	case ok:
		fmt.Fprintf(&b, "# chat template: %s, converted from the model's tokenizer_config.json\n", chat.family)
		if chat.endOfTurn != "" {
			stops = append([]string{chat.endOfTurn}, stops...)
		}
	case in.ChatTemplate == "":
		note = "the model has no chat template: TEMPLATE passes the prompt as it is (a completion model)"
		chat.template = "{{ .Prompt }}"
	default:
		note = "the model's chat template is not one bidora converts (ChatML/Qwen, Llama 3, Llama 2/Mistral [INST]): TEMPLATE passes the prompt as it is; write the chat format into TEMPLATE by hand for chat use"
		chat.template = "{{ .Prompt }}"
	}
	if note != "" {
		fmt.Fprintf(&b, "# note: %s\n", note)
	}
	fmt.Fprintf(&b, "TEMPLATE \"\"\"%s\"\"\"\n", chat.template)
	if sys := defaultSystem(in.ChatTemplate); ok && chat.endOfTurn == "<|im_end|>" && sys != "" {
		// The template's own default, which Ollama's .System would replace.
		fmt.Fprintf(&b, "SYSTEM %s\n", strconv.Quote(sys))
	}
	b.WriteString("\n")
	seen := map[string]bool{}
	for _, s := range stops {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		fmt.Fprintf(&b, "PARAMETER stop %s\n", strconv.Quote(s))
	}
	fmt.Fprintf(&b, "PARAMETER temperature 0.7\nPARAMETER top_p 0.9\nPARAMETER repeat_penalty 1.1\n")
	if in.ContextLength > 0 {
		fmt.Fprintf(&b, "PARAMETER num_ctx %d\n", min(in.ContextLength, 8192))
	}
	return b.String(), note
}

// ollamaName is a model name for `ollama create` from a GGUF path:
// its base name without .gguf, lower case, with runs of characters outside
// [a-z0-9._-] as one '-'.
func ollamaName(ggufPath string) string {
	n := strings.ToLower(strings.TrimSuffix(filepath.Base(ggufPath), filepath.Ext(ggufPath)))
	n = strings.Trim(regexp.MustCompile(`[^a-z0-9._-]+`).ReplaceAllString(n, "-"), "-._")
	if n == "" {
		n = "model"
	}
	return n
}
