package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// File is one member of a set written by WriteSet: Name is relative to the
// set's directory (a plain file name), Write produces its content.
type File struct {
	Name  string
	Write func(w io.Writer) error
}

// WriteSet writes files into dir as a set: every file is first written in full
// to a temporary name in dir and synced, and only when all of them are complete
// are they renamed into place, in the order given. A failure while writing (a
// full disk on the second file, say) therefore leaves none of the new files
// visible and every old one as it was. Each target must be missing or a regular
// file (see Write); all are checked before anything is written.
//
// Renames cannot be undone once made, so a failure during the rename phase
// itself (rare: it writes no data) can leave the first files renamed; the error
// then says which.
func WriteSet(dir string, files []File) error {
	seen := map[string]bool{}
	for _, f := range files {
		if f.Name == "" || f.Name != filepath.Base(f.Name) || f.Name == "." || f.Name == ".." || strings.ContainsAny(f.Name, `/\`) {
			return fmt.Errorf("writing to %s: %q is not a plain file name", dir, f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("writing to %s: %s appears twice in the set", dir, f.Name)
		}
		seen[f.Name] = true
		if err := CheckFile(filepath.Join(dir, f.Name)); err != nil {
			return err
		}
	}
	tmps := make([]string, 0, len(files))
	cleanup := func() {
		for _, t := range tmps {
			if t != "" {
				_ = os.Remove(t)
			}
		}
	}
	for _, f := range files {
		tmp, err := writeTemp(filepath.Join(dir, f.Name), f.Write)
		if err != nil {
			cleanup()
			return err
		}
		tmps = append(tmps, tmp)
	}
	for i, f := range files {
		if err := setHook(i); err != nil {
			cleanup()
			return err
		}
		if err := commit(tmps[i], filepath.Join(dir, f.Name)); err != nil {
			cleanup()
			if i > 0 {
				names := make([]string, i)
				for j := range names {
					names[j] = files[j].Name
				}
				err = fmt.Errorf("%w (already replaced: %s)", err, strings.Join(names, ", "))
			}
			return err
		}
		tmps[i] = "" // renamed; nothing to clean up
	}
	syncDir(dir)
	return nil
}

// setHook runs before the i-th rename of WriteSet; tests replace it to fail
// there. It must stay a no-op in production.
var setHook = func(int) error { return nil }
