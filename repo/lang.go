package repo

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

// Language is one entry of the --lang table: a name, its aliases, the file
// extensions (with the dot, lower case) and the line-comment prefix used for a
// plain path header.
type Language struct {
	Name       string
	Aliases    []string
	Extensions []string
	Comment    string
}

// Languages is the table --lang chooses from, by file extension.
var Languages = []Language{
	{"rust", []string{"rs"}, []string{".rs"}, "//"},
	{"python", []string{"py"}, []string{".py", ".pyi"}, "#"},
	{"openscad", []string{"scad"}, []string{".scad"}, "//"},
	{"c", nil, []string{".c", ".h"}, "//"},
	{"cpp", []string{"c++", "cxx"}, []string{".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".h", ".ipp", ".inl"}, "//"},
	{"go", []string{"golang"}, []string{".go"}, "//"},
	{"javascript", []string{"js"}, []string{".js", ".mjs", ".cjs", ".jsx"}, "//"},
	{"typescript", []string{"ts"}, []string{".ts", ".mts", ".cts", ".tsx"}, "//"},
	{"java", nil, []string{".java"}, "//"},
	{"kotlin", []string{"kt"}, []string{".kt", ".kts"}, "//"},
	{"swift", nil, []string{".swift"}, "//"},
	{"csharp", []string{"c#", "cs"}, []string{".cs"}, "//"},
	{"zig", nil, []string{".zig"}, "//"},
	{"ruby", []string{"rb"}, []string{".rb"}, "#"},
	{"shell", []string{"sh", "bash"}, []string{".sh", ".bash", ".zsh"}, "#"},
	{"lua", nil, []string{".lua"}, "--"},
	{"haskell", []string{"hs"}, []string{".hs"}, "--"},
	{"julia", []string{"jl"}, []string{".jl"}, "#"},
	{"r", nil, []string{".r"}, "#"},
	{"sql", nil, []string{".sql"}, "--"},
	{"glsl", nil, []string{".glsl", ".vert", ".frag", ".comp"}, "//"},
	{"wgsl", nil, []string{".wgsl"}, "//"},
	{"toml", nil, []string{".toml"}, "#"},
	{"yaml", []string{"yml"}, []string{".yaml", ".yml"}, "#"},
	{"markdown", []string{"md"}, []string{".md", ".markdown"}, ""},
}

// LookupLanguage finds a language by name or alias (case-insensitive).
func LookupLanguage(name string) (Language, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, l := range Languages {
		if l.Name == name || slices.Contains(l.Aliases, name) {
			return l, true
		}
	}
	return Language{}, false
}

// LanguageNames lists the names Languages knows, in table order.
func LanguageNames() []string {
	out := make([]string, len(Languages))
	for i, l := range Languages {
		out[i] = l.Name
	}
	return out
}

// languageOf is the first language whose extensions include p's (or nil).
func languageOf(p string) *Language {
	ext := strings.ToLower(path.Ext(p))
	if ext == "" {
		return nil
	}
	for i := range Languages {
		if slices.Contains(Languages[i].Extensions, ext) {
			return &Languages[i]
		}
	}
	return nil
}

// langSet resolves --lang names into the set of extensions they cover.
func langSet(names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	set := map[string]bool{}
	for _, n := range names {
		l, ok := LookupLanguage(n)
		if !ok {
			return nil, fmt.Errorf("unknown language %q; known: %s", n, strings.Join(LanguageNames(), ", "))
		}
		for _, e := range l.Extensions {
			set[e] = true
		}
	}
	return set, nil
}

// vendoredDirs are directory names whose contents are someone else's code or build
// output; they are skipped whole.
var vendoredDirs = []string{"vendor", "node_modules", "target", ".venv", "__pycache__", "bower_components"}

// lockFiles are dependency lock files: machine-written, not code to learn from.
var lockFiles = []string{"Cargo.lock", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "Pipfile.lock",
	"Gemfile.lock", "composer.lock", "go.sum", "uv.lock", "flake.lock", "bun.lockb", "npm-shrinkwrap.json", "mix.lock"}

// generatedNames are file-name suffixes of minified or generated files.
var generatedNames = []string{".min.js", ".min.css", ".pb.go", "_pb2.py", ".g.dart"}

// isGenerated reports a file marked as generated in its first lines: Go's
// "Code generated … DO NOT EDIT.", "@generated" (Rust, Facebook tools), or any line
// naming "generated" together with "do not edit".
func isGenerated(name, text string) bool {
	for _, s := range generatedNames {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	head := text
	for i, n := 0, 0; i < len(text); i++ {
		if text[i] == '\n' {
			if n++; n == 10 {
				head = text[:i]
				break
			}
		}
	}
	if len(head) > 4096 {
		head = head[:4096]
	}
	for _, line := range strings.Split(head, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "@generated") {
			return true
		}
		if strings.Contains(l, "generated") && strings.Contains(l, "do not edit") {
			return true
		}
	}
	return false
}

// isBinary reports content git would call binary (a NUL byte in the first 8000
// bytes) or that is not valid UTF-8 text.
func isBinary(data []byte) bool {
	head := data
	if len(head) > 8000 {
		head = head[:8000]
	}
	if slices.Contains(head, 0) {
		return true
	}
	return !utf8.Valid(data)
}
