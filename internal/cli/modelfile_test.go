package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"github.com/bidora/bidora/chattemplate"
)

// ollamaMessage is what Ollama's templates see in .Messages.
type ollamaMessage struct{ Role, Content string }

// renderOllama renders an Ollama TEMPLATE with Go's text/template, as Ollama
// does, for a system prompt and messages.
func renderOllama(t *testing.T, tmpl, system string, msgs []ollamaMessage) string {
	t.Helper()
	tp, err := template.New("m").Parse(tmpl)
	if err != nil {
		t.Fatalf("TEMPLATE does not parse: %v\n%s", err, tmpl)
	}
	var b bytes.Buffer
	if err := tp.Execute(&b, map[string]any{"System": system, "Messages": msgs, "Prompt": msgs[len(msgs)-1].Content}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestOllamaTemplateFor(t *testing.T) {
	msgs := []ollamaMessage{{"user", "Hi"}, {"assistant", "Hello."}, {"user", "Sort a list"}}
	for _, c := range []struct {
		name, chatTemplate, family, want string
	}{
		{"chatml", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}", "ChatML (Qwen)",
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nSort a list<|im_end|>\n<|im_start|>assistant\n"},
		{"llama3", "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}", "Llama 3",
			"<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nSort a list<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama2", "{{ bos_token + '[INST] ' + '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + content + ' [/INST]' }}", "Llama 2 [INST] <<SYS>>",
			"[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Sort a list [/INST]"},
		{"mistral", "{{ '[INST] ' + message['content'] + '[/INST]' }}", "Mistral [INST]",
			"[INST] Be brief.\n\nHi[/INST] Hello.</s>[INST] Sort a list[/INST]"},
		{"unknown", "{% for m in messages %}### {{ m.role }}: {{ m.content }}{% endfor %}", "", "Sort a list"},
		{"none", "", "", "Sort a list"},
	} {
		t.Run(c.name, func(t *testing.T) {
			chat, ok := ollamaTemplateFor(c.chatTemplate)
			if ok != (c.family != "") || chat.family != c.family {
				t.Fatalf("family %q (%v), want %q", chat.family, ok, c.family)
			}
			text, note := ollamaModelfile(modelfileInput{GGUF: "m.gguf", ChatTemplate: c.chatTemplate, EOS: []string{"</s>"}, ContextLength: 2048})
			if (note != "") == ok {
				t.Errorf("note %q for a recognised=%v template", note, ok)
			}
			start := strings.Index(text, `TEMPLATE """`) + len(`TEMPLATE """`)
			end := strings.Index(text[start:], `"""`)
			if got := renderOllama(t, text[start:start+end], "Be brief.", msgs); got != c.want {
				t.Errorf("rendered\n%q\nwant\n%q", got, c.want)
			}
			for _, want := range []string{"FROM ./m.gguf\n", `PARAMETER stop "</s>"`, "PARAMETER num_ctx 2048\n", "PARAMETER temperature "} {
				if !strings.Contains(text, want) {
					t.Errorf("Modelfile has no %q:\n%s", want, text)
				}
			}
			if ok && chat.endOfTurn != "" && !strings.Contains(text, "PARAMETER stop \""+chat.endOfTurn+"\"") {
				t.Errorf("no stop for %s:\n%s", chat.endOfTurn, text)
			}
		})
	}
}

// The shared tokenizers' real chat templates (Qwen3's ChatML, Llama 3's):
// the Ollama TEMPLATE renders a conversation as the Jinja template does
// (less Llama 3's BOS, which llama.cpp and Ollama add as a token).
func TestOllamaTemplateShared(t *testing.T) {
	msgs := []ollamaMessage{{"user", "Hi"}, {"assistant", "Hello."}, {"user", "Sort a list"}}
	jmsgs := []chattemplate.Message{{Role: "system", Content: "Be brief."}}
	for _, m := range msgs {
		jmsgs = append(jmsgs, chattemplate.Message{Role: m.Role, Content: m.Content})
	}
	for _, c := range []struct{ tok, family, bos string }{{"qwen3", "ChatML (Qwen)", ""}, {"llama3", "Llama 3", "<|begin_of_text|>"}} {
		dir := filepath.Join("..", "..", "..", "shared", "tokenizers", c.tok)
		data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
		if err != nil {
			t.Skipf("shared tokenizer %s absent: %v", c.tok, err)
		}
		var cfg struct {
			ChatTemplate string `json:"chat_template"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		chat, ok := ollamaTemplateFor(cfg.ChatTemplate)
		if !ok || chat.family != c.family {
			t.Fatalf("%s: family %q, want %q", c.tok, chat.family, c.family)
		}
		jt, err := chattemplate.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jt.Render(jmsgs, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := renderOllama(t, chat.template, "Be brief.", msgs); c.bos+got != want {
			t.Errorf("%s: Ollama TEMPLATE renders\n%q\nthe Jinja template\n%q", c.tok, got, want)
		}
	}
}

// A ChatML template's default system prompt (as Qwen2.5 writes one) becomes
// the Modelfile's SYSTEM.
func TestOllamaDefaultSystem(t *testing.T) {
	tmpl := "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}" +
		"{%- else %}{{- '<|im_start|>system\\nYou are a careful coding assistant.<|im_end|>\\n' }}{%- endif %}"
	text, _ := ollamaModelfile(modelfileInput{GGUF: "m.gguf", ChatTemplate: tmpl})
	if !strings.Contains(text, `SYSTEM "You are a careful coding assistant."`) {
		t.Errorf("no SYSTEM line:\n%s", text)
	}
	text, _ = ollamaModelfile(modelfileInput{GGUF: "m.gguf", ChatTemplate: "<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>"})
	if strings.Contains(text, "SYSTEM") {
		t.Errorf("a SYSTEM line without a default system prompt:\n%s", text)
	}
}

func TestOllamaName(t *testing.T) {
	for in, want := range map[string]string{"out/My Model-Q4_K_M.gguf": "my-model-q4_k_m", "x.gguf": "x", "/tmp/.gguf": "model", "a+b.GGUF": "a-b"} {
		if got := ollamaName(in); got != want {
			t.Errorf("ollamaName(%q) = %q, want %q", in, got, want)
		}
	}
}
