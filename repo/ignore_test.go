package repo

import (
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern, base, path string
		isDir, want         bool
	}{
		{"*.rs", "", "a.rs", false, true},
		{"*.rs", "", "src/deep/a.rs", false, true},
		{"*.rs", "src", "a.rs", false, false}, // outside the base
		{"/a.rs", "", "src/a.rs", false, false},
		{"src/*.rs", "", "src/a.rs", false, true},
		{"src/*.rs", "", "src/x/a.rs", false, false},
		{"build/", "", "build", true, true},
		{"build/", "", "build", false, false},
		{"**/tmp", "", "a/b/tmp", true, true},
		{"**/tmp", "", "tmp", false, true},
		{"a/**/b", "", "a/b", false, true},
		{"a/**/b", "", "a/x/y/b", false, true},
		{"a/**", "", "a", true, false},
		{"a/**", "", "a/x", false, true},
		{"a[0-9].c", "", "a5.c", false, true},
		{"a[!0-9].c", "", "a5.c", false, false},
		{"a[^0-9].c", "", "ab.c", false, true},
		{"[]x]", "", "]", false, true},
		{"[a-", "", "a", false, false},
		{"?.go", "", "é.go", false, true},
		{`\#x`, "", "#x", false, true},
		{`\!x`, "", "!x", false, true},
		{`a\ `, "", "a ", false, true},
		{"*", "", "anything", false, true},
		{"a*b*c", "", "aXXbYYbZc", false, true},
		{"a*b*c", "", "aXXbYY", false, false},
		{"x/y", "sub", "sub/x/y", false, true},
	}
	for _, tc := range tests {
		ps := ParseIgnore([]byte(tc.pattern), tc.base)
		if len(ps) != 1 {
			t.Errorf("%q: %d patterns", tc.pattern, len(ps))
			continue
		}
		if got := ps[0].Match(tc.path, tc.isDir); got != tc.want {
			t.Errorf("%q (base %q) on %q dir=%v: %v, want %v", tc.pattern, tc.base, tc.path, tc.isDir, got, tc.want)
		}
	}
}

func TestParseIgnoreLines(t *testing.T) {
	ps := ParseIgnore([]byte("# comment\n\n*.o   \n!keep.o\r\n/\n"), "")
	if len(ps) != 2 || ps[0].String() != "*.o" || !ps[1].Negate || ps[1].String() != "keep.o" {
		t.Fatalf("%+v", ps)
	}
	ig := Ignore{}.With(ps)
	if ok, _ := ig.Ignored("a.o", false); !ok {
		t.Error("a.o not ignored")
	}
	if ok, p := ig.Ignored("keep.o", false); ok || p == nil || !p.Negate {
		t.Error("keep.o ignored")
	}
}

// FuzzParseIgnore: any .gitignore parses and matches any path without panicking, and
// a literal pattern (no glob characters) matches the path it names.
func FuzzParseIgnore(f *testing.F) {
	for _, s := range []string{"*.rs\n!a.rs\n", "build/\n/x/**/y\n", "[a-\n\\", "a[]]b\n**\n", "#c\n \\ \n", "[!\\]]x"} {
		f.Add(s, "src/a.rs")
	}
	f.Fuzz(func(t *testing.T, data, path string) {
		ig := Ignore{}.With(ParseIgnore([]byte(data), ""))
		ig.Ignored(path, false)
		ig.Ignored(path, true)
		ig = ig.With(ParseIgnore([]byte(data), "sub"))
		ig.Ignored("sub/"+path, false)
		name := strings.Trim(path, "/")
		if name == "" || strings.ContainsAny(name, "*?[\\!# \r\n") || strings.Contains(name, "//") {
			return
		}
		ps := ParseIgnore([]byte(name), "")
		if len(ps) != 1 || !ps[0].Match(name, false) {
			t.Errorf("literal pattern %q does not match itself", name)
		}
	})
}
