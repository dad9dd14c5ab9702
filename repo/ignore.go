package repo

import (
	"strings"
)

// Pattern is one line of a .gitignore file (or .git/info/exclude), parsed.
type Pattern struct {
	// Base is the directory of the file the pattern came from, slash-separated and
	// relative to the repository's top ("" for the top itself).
	Base string
	// Negate is a pattern that began with '!': a path it matches is re-included.
	Negate bool
	// DirOnly is a pattern that ended with '/': it matches directories only.
	DirOnly bool
	// Anchored is a pattern with a '/' before its end: it matches the path relative
	// to Base; otherwise it matches the last path element at any depth below Base.
	Anchored bool
	segs     []string
	text     string
}

// String is the pattern as written (without a negation's '!').
func (p Pattern) String() string { return p.text }

// ParseIgnore parses the lines of a .gitignore file found in directory base (slash-
// separated, relative to the repository top, "" for the top). Blank lines and
// comments ('#') are skipped; trailing spaces are dropped unless escaped with '\';
// "\#" and "\!" begin a pattern with a literal '#' or '!'.
func ParseIgnore(data []byte, base string) []Pattern {
	var out []Pattern
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := parseIgnoreLine(line, base); ok {
			out = append(out, p)
		}
	}
	return out
}

func parseIgnoreLine(line, base string) (Pattern, bool) {
	line = strings.TrimSuffix(line, "\r")
	// Trailing spaces go unless the last one is escaped.
	for strings.HasSuffix(line, " ") && !strings.HasSuffix(line, `\ `) {
		line = line[:len(line)-1]
	}
	if line == "" || line[0] == '#' {
		return Pattern{}, false
	}
	p := Pattern{Base: base}
	if line[0] == '!' {
		p.Negate = true
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		p.DirOnly = true
		line = strings.TrimSuffix(line, "/")
	}
	if strings.Contains(line, "/") {
		p.Anchored = true
		line = strings.TrimPrefix(line, "/")
	}
	if line == "" {
		return Pattern{}, false
	}
	p.text = line
	p.segs = strings.Split(line, "/")
	return p, true
}

// Match reports whether the pattern matches path (slash-separated, relative to the
// repository top), a directory when isDir. A path outside the pattern's Base never
// matches.
func (p Pattern) Match(path string, isDir bool) bool {
	if p.DirOnly && !isDir {
		return false
	}
	rel := path
	if p.Base != "" {
		if !strings.HasPrefix(path, p.Base+"/") {
			return false
		}
		rel = path[len(p.Base)+1:]
	}
	if !p.Anchored {
		return matchSegment(p.text, rel[strings.LastIndexByte(rel, '/')+1:])
	}
	return matchSegments(p.segs, strings.Split(rel, "/"))
}

// matchSegments matches pattern segments against path segments; a "**" segment
// matches zero or more path segments, except at the end, where it matches one or
// more (so "a/**" matches what is inside a, not a itself).
func matchSegments(p, s []string) bool {
	for len(p) > 0 {
		if p[0] == "**" {
			if len(p) == 1 {
				return len(s) >= 1
			}
			for i := 0; i <= len(s); i++ {
				if matchSegments(p[1:], s[i:]) {
					return true
				}
			}
			return false
		}
		if len(s) == 0 || !matchSegment(p[0], s[0]) {
			return false
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

// matchSegment matches one path element against a glob without '/': '*' any run of
// characters, '?' one character, "[a-z]" / "[!a-z]" / "[^a-z]" a class, '\' escapes
// the next character. A malformed class (no closing ']') matches nothing, as in git.
func matchSegment(pat, name string) bool {
	px, nx := 0, 0
	starPx, starNx := -1, -1
	for nx < len(name) || px < len(pat) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				for px < len(pat) && pat[px] == '*' {
					px++
				}
				starPx, starNx = px, nx
				continue
			case '?':
				if nx < len(name) {
					_, size := decodeRune(name[nx:])
					px++
					nx += size
					continue
				}
			case '[':
				if nx < len(name) {
					r, size := decodeRune(name[nx:])
					ok, width, valid := matchClass(pat[px:], r)
					if !valid {
						return false
					}
					if ok {
						px += width
						nx += size
						continue
					}
				}
			case '\\':
				if px+1 < len(pat) {
					if nx < len(name) && name[nx] == pat[px+1] {
						px += 2
						nx++
						continue
					}
				} else if nx < len(name) && name[nx] == '\\' { // a trailing '\' is literal
					px++
					nx++
					continue
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if starPx >= 0 && starNx < len(name) {
			_, size := decodeRune(name[starNx:])
			starNx += size
			px, nx = starPx, starNx
			continue
		}
		return false
	}
	return true
}

// matchClass matches r against the bracket expression at the start of pat; width is
// the expression's length, valid false when it has no closing ']'.
func matchClass(pat string, r rune) (ok bool, width int, valid bool) {
	i := 1
	negate := false
	if i < len(pat) && (pat[i] == '!' || pat[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(pat) {
		if pat[i] == ']' && !first {
			return ok != negate, i + 1, true
		}
		first = false
		lo, n := classChar(pat[i:])
		if n == 0 {
			return false, 0, false
		}
		i += n
		hi := lo
		if i+1 < len(pat) && pat[i] == '-' && pat[i+1] != ']' {
			h, m := classChar(pat[i+1:])
			if m == 0 {
				return false, 0, false
			}
			hi = h
			i += 1 + m
		}
		if lo <= r && r <= hi {
			ok = true
		}
	}
	return false, 0, false
}

// classChar reads one (possibly escaped) character of a bracket expression.
func classChar(s string) (rune, int) {
	if s[0] == '\\' {
		if len(s) < 2 {
			return 0, 0
		}
		r, n := decodeRune(s[1:])
		return r, n + 1
	}
	return decodeRune(s)
}

// Ignore is the set of ignore patterns in force in one directory, lowest precedence
// first: .git/info/exclude, then the .gitignore files from the top down. The last
// pattern that matches a path decides.
type Ignore struct {
	patterns []Pattern
}

// With returns the set extended by more patterns of higher precedence (a deeper
// .gitignore); the receiver is not changed.
func (ig Ignore) With(ps []Pattern) Ignore {
	if len(ps) == 0 {
		return ig
	}
	out := make([]Pattern, 0, len(ig.patterns)+len(ps))
	return Ignore{patterns: append(append(out, ig.patterns...), ps...)}
}

// Ignored reports whether path (relative to the repository top) is ignored, and by
// which pattern (nil when no pattern matched).
func (ig Ignore) Ignored(path string, isDir bool) (bool, *Pattern) {
	for i := len(ig.patterns) - 1; i >= 0; i-- {
		if ig.patterns[i].Match(path, isDir) {
			return !ig.patterns[i].Negate, &ig.patterns[i]
		}
	}
	return false, nil
}
