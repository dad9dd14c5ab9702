package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Error is a bad setting. Where is a flag ("--rank") or a YAML position and key
// ("run.yaml:12: rank"); the CLI turns it into exit status 2.
type Error struct {
	Where string
	Value string // the offending value as given ("" when not about one value)
	Msg   string // what is wrong and what is allowed
	Err   error  // the cause, if any (an I/O or YAML error)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	switch {
	case e.Value == "":
		return e.Where + ": " + e.Msg
	case strings.HasPrefix(e.Where, "--"):
		return fmt.Sprintf("%s %s: %s", e.Where, e.Value, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Where, e.Value, e.Msg)
}

// MaxYAMLBytes bounds a --config file: a configuration is a short mapping of
// settings, so anything larger is a mistake (a data file given as --config).
const MaxYAMLBytes = 1 << 20

// LoadYAML reads the YAML file at path, at most MaxYAMLBytes of it, and applies
// it with ApplyYAML. Problems with the file itself (missing, unreadable, too
// large) are *Error naming it.
func LoadYAML(fs *pflag.FlagSet, path string, o Origins) error {
	f, err := os.Open(path)
	if err != nil {
		return &Error{Where: path, Msg: "cannot read the config file: " + pathErrText(err), Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxYAMLBytes+1))
	if err != nil {
		return &Error{Where: path, Msg: "cannot read the config file: " + pathErrText(err), Err: err}
	}
	return ApplyYAML(fs, data, path, o)
}

// pathErrText is an error's text without the path a *fs.PathError repeats.
func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ApplyYAML sets the settings of a YAML file (a flat mapping of flag names to
// values; '_' may replace '-') on fs, skipping those already given on the
// command line, and records each one's file:line in o. Unknown keys, duplicate
// keys and bad values are *Error naming file, line and key.
//
// A null value (`key: ~`, `key: null` or `key:`) leaves the setting unset, so
// its default applies. Anchors and aliases resolve to the anchored value, and a
// merge key (`<<: *base` or `<<: {rank: 16}`) supplies the settings the mapping
// does not give itself. The file must hold one document: a second one (after
// `---`) is refused rather than ignored. data larger than MaxYAMLBytes is refused.
func ApplyYAML(fs *pflag.FlagSet, data []byte, filename string, o Origins) error {
	if len(data) > MaxYAMLBytes {
		return &Error{Where: filename, Msg: fmt.Sprintf("larger than %d KiB: a config file is a short mapping of settings (is it the right file?)", MaxYAMLBytes>>10)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return &Error{Where: filename, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Err: err}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return &Error{Where: filename, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Err: err}
	case !isNullDoc(&next):
		return &Error{Where: fmt.Sprintf("%s:%d", filename, docLine(&next)),
			Msg: "a second YAML document (after ---): a config file holds one mapping of settings; merge the documents or remove the ---"}
	}
	if isNullDoc(&doc) {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.AliasNode {
		root = root.Alias
	}
	if root.Kind != yaml.MappingNode {
		return &Error{Where: fmt.Sprintf("%s:%d", filename, root.Line), Msg: "want a mapping of setting: value (keys are train flag names)"}
	}
	pairs, err := mappingPairs(root, filename, 0)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for _, p := range pairs {
		k, v := p.key, p.value
		name := strings.ReplaceAll(k.Value, "_", "-")
		where := fmt.Sprintf("%s:%d: %s", filename, k.Line, k.Value)
		fl := fs.Lookup(name)
		if fl == nil || !slices.Contains(Names(), name) {
			msg := "unknown key"
			if s := suggest(name); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			return &Error{Where: where, Msg: msg + "; allowed keys: " + strings.Join(Names(), ", ")}
		}
		if line, dup := seen[name]; dup {
			if p.merged {
				continue // a merged setting the mapping gives itself
			}
			return &Error{Where: where, Msg: fmt.Sprintf("given twice (first on line %d)", line)}
		}
		seen[name] = k.Line
		if fl.Changed {
			continue // the command line wins
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		var val string
		switch {
		case isNull(v):
			continue // unset: the default applies
		case v.Kind == yaml.ScalarNode:
			val = v.Value
		case v.Kind == yaml.SequenceNode:
			if fl.Value.Type() != "stringSlice" {
				return &Error{Where: where, Msg: "want a single value, not a list; " + describe(fl)}
			}
			var items []string
			for _, it := range v.Content {
				if it.Kind == yaml.AliasNode {
					it = it.Alias
				}
				if it.Kind != yaml.ScalarNode || isNull(it) {
					return &Error{Where: where, Msg: "list items must be plain values"}
				}
				if it.Value == "" || strings.Contains(it.Value, ",") {
					return &Error{Where: where, Value: fmt.Sprintf("%q", it.Value), Msg: "list items must be non-empty single values (no commas); " + describe(fl)}
				}
				items = append(items, it.Value)
			}
			// Set item by item: joining with commas would let pflag's CSV parsing
			// split or refuse them anew.
			if sv, ok := fl.Value.(pflag.SliceValue); ok {
				if err := sv.Replace(items); err != nil {
					return &Error{Where: where, Value: fmt.Sprintf("%q", items), Msg: describe(fl)}
				}
				fl.Changed = true
				o[name] = where
				continue
			}
			val = strings.Join(items, ",")
		default:
			return &Error{Where: where, Msg: "want a single value, not a mapping; " + describe(fl)}
		}
		if err := fs.Set(name, val); err != nil {
			return &Error{Where: where, Value: fmt.Sprintf("%q", val), Msg: describe(fl)}
		}
		o[name] = where
	}
	return nil
}

// pair is one key: value of a mapping; merged when it came through a merge key.
type pair struct {
	key, value *yaml.Node
	merged     bool
}

// mappingPairs lists m's pairs with merge keys (<<) expanded: the mapping's own
// pairs first, then those of the merged mappings in order, so that a setting
// given both ways takes the mapping's own value (YAML's merge rule).
func mappingPairs(m *yaml.Node, filename string, depth int) ([]pair, error) {
	if depth > 16 {
		return nil, &Error{Where: fmt.Sprintf("%s:%d", filename, m.Line), Msg: "merge keys nested too deeply"}
	}
	var own, merged []pair
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || !(k.Tag == "!!merge" || k.Value == "<<" && k.Style == 0) {
			own = append(own, pair{key: k, value: v})
			continue
		}
		var sources []*yaml.Node
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		switch v.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{v}
		case yaml.SequenceNode:
			sources = v.Content
		}
		if len(sources) == 0 {
			return nil, &Error{Where: fmt.Sprintf("%s:%d: <<", filename, k.Line), Msg: "a merge key wants a mapping, an alias of one or a list of them"}
		}
		for _, src := range sources {
			if src.Kind == yaml.AliasNode {
				src = src.Alias
			}
			if src.Kind != yaml.MappingNode {
				return nil, &Error{Where: fmt.Sprintf("%s:%d: <<", filename, k.Line), Msg: "a merge key wants a mapping, an alias of one or a list of them"}
			}
			ps, err := mappingPairs(src, filename, depth+1)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				p.merged = true
				merged = append(merged, p)
			}
		}
	}
	return append(own, merged...), nil
}

// isNull reports whether a node is YAML's null (~, null, or nothing).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// isNullDoc reports whether a decoded document is empty or only null.
func isNullDoc(doc *yaml.Node) bool {
	return doc.Kind == 0 || len(doc.Content) == 0 || isNull(doc.Content[0])
}

// docLine is the line a document's content starts on.
func docLine(doc *yaml.Node) int {
	if len(doc.Content) > 0 && doc.Content[0].Line > 0 {
		return doc.Content[0].Line
	}
	return doc.Line
}

// describe says what a flag accepts.
func describe(fl *pflag.Flag) string {
	switch fl.Value.Type() {
	case "int", "int64":
		return "want an integer"
	case "float64":
		return "want a number"
	case "bool":
		return "want true or false"
	case "stringSlice":
		return "want a list (or a comma-separated string)"
	}
	return "want a string"
}

// suggest returns the known key closest to name, if it is close.
func suggest(name string) string {
	best, bestD := "", 4
	for _, n := range Names() {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// WriteYAML writes the configuration as YAML with kebab-case keys, grouped
// under comments, that ApplyYAML reads back to the same configuration. header
// lines become comments at the top.
func (t *Train) WriteYAML(w io.Writer, header []string) error {
	root := &yaml.Node{Kind: yaml.MappingNode}
	group := ""
	for _, f := range t.fields() {
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name}
		if f.Group != group {
			group = f.Group
			k.HeadComment = group
		}
		v := &yaml.Node{}
		var err error
		switch p := f.ptr.(type) {
		case *string:
			err = v.Encode(*p)
		case *int:
			err = v.Encode(*p)
		case *int64:
			err = v.Encode(*p)
		case *float64:
			err = v.Encode(*p)
		case *bool:
			err = v.Encode(*p)
		case *[]string:
			err = v.Encode(*p)
			v.Style = yaml.FlowStyle
		}
		if err != nil {
			return fmt.Errorf("encoding %s: %w", f.Name, err)
		}
		root.Content = append(root.Content, k, v)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	var buf bytes.Buffer
	for _, h := range header {
		for _, line := range strings.Split(h, "\n") {
			buf.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encoding configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encoding configuration: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// errorsAs is errors.As for *Error, for callers that only have an error.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
