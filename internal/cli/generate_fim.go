package cli

import (
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/bidora/bidora/fim"
	"github.com/bidora/bidora/tokenizer"
)

// fillMarker marks the gap in a --fim prompt.
const fillMarker = "<FILL>"

// infillOptions are generate's fill-in-the-middle flags.
type infillOptions struct {
	PrefixFile, SuffixFile string
	Marker                 bool // --fim: --prompt holds one <FILL>
	Mode                   string
}

func addInfillFlags(f *pflag.FlagSet, o *infillOptions) {
	f.StringVar(&o.PrefixFile, "prefix-file", "", "infill: the text before the gap (with --suffix-file; needs a model with FIM tokens); prints only the middle")
	f.StringVar(&o.SuffixFile, "suffix-file", "", "infill: the text after the gap (with --prefix-file)")
	f.BoolVar(&o.Marker, "fim", false, "infill: --prompt holds one "+fillMarker+" marker where the middle goes")
	f.StringVar(&o.Mode, "fim-mode", "psm", "infill prompt order: psm (prefix, suffix, middle) or spm (suffix, prefix, middle), as the model was trained")
}

// on reports whether generate infills.
func (o *infillOptions) on() bool { return o.Marker || o.PrefixFile != "" || o.SuffixFile != "" }

// checkInfillFlags validates the infilling flags against the others.
func checkInfillFlags(opts *generateOptions) error {
	o := &opts.infill
	if !o.on() {
		return nil
	}
	files := o.PrefixFile != "" || o.SuffixFile != ""
	switch {
	case o.Mode != string(fim.PSM) && o.Mode != string(fim.SPM):
		return usageErrorf("--fim-mode must be psm or spm, got %q", o.Mode)
	case opts.Chat:
		return usageErrorf("--fim, --prefix-file and --suffix-file infill a plain text; they do not combine with --chat")
	case files && o.Marker:
		return usageErrorf("--fim takes the gap from a %s marker in --prompt; --prefix-file/--suffix-file give the two sides instead: use one or the other", fillMarker)
	case files && opts.promptSet:
		return usageErrorf("--prompt does not combine with --prefix-file/--suffix-file (use --fim with a %s marker in --prompt instead)", fillMarker)
	case o.Marker && !opts.promptSet:
		return usageErrorf("--fim needs --prompt with one %s marker where the middle goes", fillMarker)
	case o.Marker && strings.Count(opts.Prompt, fillMarker) != 1:
		return usageErrorf("--fim: --prompt must hold exactly one %s marker, it has %d", fillMarker, strings.Count(opts.Prompt, fillMarker))
	}
	return nil
}

// infillText returns the prefix and the suffix from the files or the marked prompt.
func infillText(o *infillOptions, prompt string) (prefix, suffix string, err error) {
	if o.Marker {
		prefix, suffix, _ = strings.Cut(prompt, fillMarker)
		return prefix, suffix, nil
	}
	read := func(flag, path string) (string, error) {
		if path == "" {
			return "", nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usageErrorf("%s: %w", flag, err)
		}
		return string(b), nil
	}
	if prefix, err = read("--prefix-file", o.PrefixFile); err != nil {
		return "", "", err
	}
	if suffix, err = read("--suffix-file", o.SuffixFile); err != nil {
		return "", "", err
	}
	return prefix, suffix, nil
}

// infillFlag names the flag that asked for infilling, for errors.
func (o *infillOptions) flag() string {
	if o.Marker {
		return "--fim"
	}
	if o.PrefixFile != "" {
		return "--prefix-file"
	}
	return "--suffix-file"
}

// infillPrompt reads the two sides and builds the model's FIM prompt with the
// tokenizer in dir, before any weights load: a tokenizer without FIM tokens is a
// usage error naming the flag. It returns the prompt ids, the extra stop ids and the
// ids to decode the middle after (fim.Builder.MiddleContext).
func infillPrompt(dir string, opts *generateOptions) (ids, stops, context []int, err error) {
	o := &opts.infill
	prefix, suffix, err := infillText(o, opts.Prompt)
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := fim.Detect(tok)
	if err != nil {
		return nil, nil, nil, noFIMTokens(o.flag(), err)
	}
	sp, _ := tok.ResolveSpecial(tokenizer.SpecialConfig{}) // BOS only; EOS is generate's concern
	b := fim.NewBuilder(tok, v, sp.BOS)
	if ids, err = b.Prompt("", prefix, suffix, fim.Mode(o.Mode)); err != nil {
		return nil, nil, nil, usageErrorf("--fim-mode: %v", err)
	}
	return ids, b.Stops(), b.MiddleContext(), nil
}
