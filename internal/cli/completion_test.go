package cli

import (
	"strings"
	"testing"
)

func TestCompletionShells(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		inOut    string // expected in stdout
		inStderr string // expected in stderr
	}{
		{[]string{"completion", "bash"}, ExitOK, "bash completion", ""},
		{[]string{"completion", "zsh"}, ExitOK, "zsh completion", ""},
		{[]string{"completion", "fish"}, ExitOK, "fish completion", ""},
		{[]string{"completion", "powershell"}, ExitOK, "powershell completion", ""},
		{[]string{"completion", "powershell2"}, ExitUsage, "", `unknown shell "powershell2"; supported shells: bash, zsh, fish, powershell`},
		{[]string{"completion", "cmd.exe", "x"}, ExitUsage, "", `unknown shell "cmd.exe"`},
		{[]string{"completion"}, ExitUsage, "", "name a shell: bash, zsh, fish, powershell"},
	}
	for _, c := range cases {
		code, out, stderr := run(t, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, stderr)
		}
		if !strings.Contains(strings.ToLower(out), c.inOut) {
			t.Errorf("%v: stdout lacks %q: %.200q", c.args, c.inOut, out)
		}
		if !strings.Contains(stderr, c.inStderr) {
			t.Errorf("%v: stderr lacks %q: %q", c.args, c.inStderr, stderr)
		}
	}
}
