package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/safetensors"
	"github.com/bidora/bidora/tokenizer"
)

func genTestModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := tinymodel.Write(dir, tinymodel.Options{Arch: "qwen2", DType: safetensors.BF16, Seed: 21}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runGenerateCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"generate"}, args...), &IO{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func decodeGenJSON(t *testing.T, out string) []generateResult {
	t.Helper()
	var res []generateResult
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r generateResult
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		res = append(res, r)
	}
	return res
}

func TestGenerateUsageErrors(t *testing.T) {
	dir := genTestModel(t)
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"--prompt", "x"}, "--model"},
		{[]string{"--model", dir}, "--prompt"},
		{[]string{"--model", dir, "--prompt", ""}, "--prompt"},
		{[]string{"--model", dir, "--prompt", "x", "--system", "s"}, "--system"},
		{[]string{"--model", dir, "--prompt", "x", "--max-new-tokens", "-1"}, "--max-new-tokens"},
		{[]string{"--model", dir, "--prompt", "x", "--temperature", "-0.5"}, "--temperature"},
		{[]string{"--model", dir, "--prompt", "x", "--top-k", "-3"}, "--top-k"},
		{[]string{"--model", dir, "--prompt", "x", "--top-p", "0"}, "--top-p"},
		{[]string{"--model", dir, "--prompt", "x", "--top-p", "1.5"}, "--top-p"},
		{[]string{"--model", dir, "--prompt", "x", "--repetition-penalty", "0"}, "--repetition-penalty"},
		{[]string{"--model", dir, "--prompt", "x", "--stop", ""}, "--stop"},
		{[]string{"--model", dir, "--prompt", "x", "--threads", "-1"}, "--threads"},
		{[]string{"--model", dir, "--prompt", "x", "--temperature", "hot"}, "temperature"},
		{[]string{"--model", dir, "--prompt", "x", "--quantization", "nf5"}, "--quantization nf5"},
		{[]string{"--model", dir, "--prompt", "x", "--compute", "fp16"}, "--compute"},
	}
	for _, c := range cases {
		code, _, errOut := runGenerateCmd(t, "", c.args...)
		if code != ExitUsage || !strings.Contains(errOut, c.flag) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %s", c.args, code, errOut, c.flag)
		}
	}
}

// Greedy output of the command equals the library's greedy generation, streamed or as
// JSON, and a stop string cuts it.
func TestGeneratePlain(t *testing.T) {
	dir := genTestModel(t)
	const prompt = "def main():"
	want, ids, ref := libraryGreedy(t, dir, prompt, 20, model.Options{})

	code, out, errOut := runGenerateCmd(t, "", "--model", dir, "--prompt", prompt, "--max-new-tokens", "20", "--json", "--threads", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	res := decodeGenJSON(t, out)
	if len(res) != 1 || res[0].Text != want || res[0].Tokens != len(ref.Tokens) || res[0].PromptTokens != len(ids) || res[0].StopReason != ref.StopReason {
		t.Fatalf("got %+v, want text %q, %d tokens, stop %s", res, want, len(ref.Tokens), ref.StopReason)
	}
	if res[0].DecodeTPS <= 0 || res[0].PrefillTPS <= 0 {
		t.Errorf("rates %+v not positive", res[0])
	}

	code, out, errOut = runGenerateCmd(t, "", "--model", dir, "--prompt", prompt, "--max-new-tokens", "20")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.TrimSuffix(out, "\n") != strings.TrimSuffix(want, "\n") {
		t.Errorf("streamed %q, want %q", out, want)
	}

	if len(want) < 4 {
		t.Skipf("greedy text %q too short for a stop string", want)
	}
	stop := want[len(want)/2 : len(want)/2+2]
	code, out, errOut = runGenerateCmd(t, "", "--model", dir, "--prompt", prompt, "--max-new-tokens", "20", "--stop", stop, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	res = decodeGenJSON(t, out)
	if cut := want[:strings.Index(want, stop)]; len(res) != 1 || res[0].Text != cut || res[0].StopReason != "stop" {
		t.Errorf("--stop %q: got %+v, want text %q and stop_reason stop", stop, res, cut)
	}
}

func TestGenerateChat(t *testing.T) {
	dir := genTestModel(t)
	code, out, errOut := runGenerateCmd(t, "", "--model", dir, "--chat", "--system", "Be brief.", "--prompt", "hello", "--max-new-tokens", "8", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	one := decodeGenJSON(t, out)
	if len(one) != 1 || one[0].Tokens == 0 {
		t.Fatalf("one-shot chat: %+v", one)
	}
	// A session from stdin: one reply per non-empty line, the first equal to the
	// one-shot answer, the second seeing the whole conversation.
	code, out, errOut = runGenerateCmd(t, "hello\n\nand then?\n", "--model", dir, "--chat", "--system", "Be brief.", "--max-new-tokens", "8", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	turns := decodeGenJSON(t, out)
	if len(turns) != 2 {
		t.Fatalf("got %d replies, want 2: %q", len(turns), out)
	}
	if turns[0].Text != one[0].Text || turns[0].Tokens != one[0].Tokens {
		t.Errorf("first turn %+v, one-shot %+v", turns[0], one[0])
	}
	if turns[1].PromptTokens <= turns[0].PromptTokens+turns[0].Tokens {
		t.Errorf("second turn's prompt (%d tokens) does not hold the first exchange (%d + %d)", turns[1].PromptTokens, turns[0].PromptTokens, turns[0].Tokens)
	}
}

func code14mDir(t *testing.T) string {
	dir := filepath.Join("..", "..", "..", "shared", "models", "code14m")
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Skipf("code14m absent: %v", err)
	}
	return dir
}

// On the real model: the same seed gives the same sample, another seed another one,
// and --chat without a chat template is a usage error.
func TestGenerateCode14mSampling(t *testing.T) {
	dir := code14mDir(t)
	run := func(seed string) generateResult {
		code, out, errOut := runGenerateCmd(t, "", "--model", dir, "--prompt", "fn parse(s: &str) -> ", "--temperature", "0.9",
			"--top-k", "40", "--top-p", "0.95", "--repetition-penalty", "1.1", "--seed", seed, "--max-new-tokens", "24", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		return decodeGenJSON(t, out)[0]
	}
	a, b, c := run("1"), run("1"), run("2")
	if a.Text != b.Text {
		t.Errorf("seed 1 twice: %q vs %q", a.Text, b.Text)
	}
	if a.Text == c.Text {
		t.Errorf("seeds 1 and 2 gave the same text %q", a.Text)
	}
	code, _, errOut := runGenerateCmd(t, "", "--model", dir, "--chat", "--prompt", "hi")
	if code != ExitUsage || !strings.Contains(errOut, "chat template") {
		t.Errorf("--chat without a template: exit %d, %q", code, errOut)
	}
}

// A 4-bit base generates and says how its weights are held.
func TestGenerateQuantized(t *testing.T) {
	dir := genTestModel(t)
	code, out, errOut := runGenerateCmd(t, "", "--model", dir, "--prompt", "def f():", "--max-new-tokens", "5", "--quantization", "nf4", "--json")
	if code != ExitOK || !strings.Contains(out, `"tokens"`) || !strings.Contains(strings.ToLower(errOut), "nf4") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}

// A chat template that refuses the conversation is reported once, naming the template
// line, before the weights are loaded.
func TestGenerateChatTemplateError(t *testing.T) {
	dir := genTestModel(t)
	path := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["chat_template"] = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" +
		"{% for m in messages %}{{ m['content'] }}{% endfor %}"
	data, _ = json.Marshal(cfg)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, stdin := range []string{"", "hello\n"} {
		args := []string{"--model", dir, "--chat", "--system", "Be brief."}
		if stdin == "" {
			args = append(args, "--prompt", "hello")
		}
		code, _, errOut := runGenerateCmd(t, stdin, args...)
		want := "bidora: chat template line 1: raise_exception: System role not supported\n"
		if code != ExitError || !strings.HasSuffix(errOut, want) || strings.Count(errOut, "chat template") != 1 {
			t.Errorf("stdin %q: exit %d, stderr %q; want it to end with %q", stdin, code, errOut, want)
		}
		if strings.Contains(errOut, "--quantization") {
			t.Errorf("stdin %q: the model was loaded before the template was tried: %q", stdin, errOut)
		}
	}
}

// A chat session reads a message line of any length the chat template can hold, and
// names the limit beyond it (it said "bufio.Scanner: token too long").
func TestGenerateChatLongLine(t *testing.T) {
	dir := genTestModel(t)
	code, _, errOut := runGenerateCmd(t, "hello\n"+strings.Repeat("x", replMaxLine+1)+"\n", "--model", dir, "--chat", "--max-new-tokens", "2", "--json")
	want := "stdin:2: line longer than the limit of 16 MiB: a chat message is one line of stdin"
	if code != ExitError || !strings.Contains(errOut, want) || strings.Contains(errOut, "token too long") {
		t.Fatalf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// --compute bf16 runs the prompt's products in bf16 compute: the output equals the
// library's greedy generation with the same compute and the JSON says which compute
// ran; auto resolves for this CPU (f32 in these tests, which hide native bf16).
func TestGenerateCompute(t *testing.T) {
	dir := genTestModel(t)
	const prompt = "def main(): return 1 + 2 + 3"
	for _, c := range []struct {
		flag string
		want model.Compute
	}{{"bf16", model.ComputeBF16}, {"f32", model.ComputeF32}, {"auto", model.ComputeF32}} {
		want, _, _ := libraryGreedy(t, dir, prompt, 12, model.Options{Compute: c.want})
		code, out, errOut := runGenerateCmd(t, "", "--model", dir, "--prompt", prompt, "--max-new-tokens", "12", "--json", "--compute", c.flag)
		if code != 0 {
			t.Fatalf("--compute %s: exit %d: %s", c.flag, code, errOut)
		}
		res := decodeGenJSON(t, out)
		if len(res) != 1 || res[0].Text != want || res[0].Compute != string(c.want) {
			t.Errorf("--compute %s: got %+v, want text %q and compute %s", c.flag, res, want, c.want)
		}
	}
}

// libraryGreedy is the library's greedy generation of maxNew tokens after prompt with
// the model in dir loaded with opts: the continuation's text, the prompt's ids and the
// result.
func libraryGreedy(t *testing.T, dir, prompt string, maxNew int, opts model.Options) (string, []int, *model.GenerateResult) {
	t.Helper()
	m, err := model.Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := m.NewKVCache(0)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.EncodeWithSpecial(prompt)
	ref, err := m.Generate(context.Background(), kc, ids, model.GenerateOptions{MaxNewTokens: maxNew})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Decode(append(append([]int(nil), ids...), ref.Tokens...), true)[len(tok.Decode(ids, true)):], ids, ref
}
