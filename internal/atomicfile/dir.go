package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bidora/bidora/internal/filelock"
)

// Names of the directories that TempDir and ReplaceDir leave beside the final
// directory while they work, and that RecoverDir clears up after a crash:
//
//	.<base>.bidora-tmp-<pid>-<random>   a directory being filled (TempDir)
//	.<base>.bidora-old-<pid>            the previous final directory during a swap
const (
	tmpMarker = ".bidora-tmp-"
	oldMarker = ".bidora-old-"
)

// Steps of ReplaceDir at which dirHook is called (tests stop there to model a
// crash).
const (
	stepMoveOld   = 1 // before final is renamed aside
	stepMoveNew   = 2 // before tmp is renamed to final
	stepSync      = 3 // before the parent directory is synced
	stepRemoveOld = 4 // before the previous final is removed
)

// dirHook runs before each step of ReplaceDir; a non-nil error makes
// ReplaceDir return at once, leaving everything as a crash at that point
// would. Tests replace it; it must stay a no-op in production.
var dirHook = func(step int) error { return nil }

// TempDir creates an empty directory (mode 0755) beside final, named so that
// RecoverDir recognises and removes it if the process dies before ReplaceDir.
func TempDir(final string) (string, error) {
	final = filepath.Clean(final)
	parent, base := filepath.Split(final)
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+tmpMarker+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("creating a temporary directory for %s: %w", final, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("creating a temporary directory for %s: %w", final, err)
	}
	return tmp, nil
}

func oldDir(final string, pid int) string {
	parent, base := filepath.Split(filepath.Clean(final))
	return filepath.Join(parent, "."+base+oldMarker+strconv.Itoa(pid))
}

// ReplaceDir makes the complete directory tmp appear at final, replacing a
// directory already there. tmp must be on the same filesystem as final (TempDir
// makes one that is). final must be missing or a directory; a symlink, even to a
// directory, is refused (*NotReplaceableError), like any other kind of file.
//
// The steps are ordered so that a crash at any point leaves a complete copy,
// old or new, that RecoverDir puts back at final: final is renamed aside to
// .<base>.bidora-old-<pid>, tmp is renamed to final, and only then is the old
// copy removed. If the second rename fails, the old copy is renamed back.
func ReplaceDir(tmp, final string) error {
	final = filepath.Clean(final)
	fi, err := os.Lstat(tmp)
	if err != nil {
		return fmt.Errorf("replacing %s: %w", final, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("replacing %s: %s is a %s, not a directory", final, tmp, kind(fi.Mode()))
	}
	if err := CheckDir(final); err != nil {
		return err
	}
	parent := filepath.Dir(final)
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
		if err := dirHook(stepMoveNew); err != nil {
			return err
		}
		if err := os.Rename(tmp, final); err != nil {
			return fmt.Errorf("moving %s to %s: %w", tmp, final, err)
		}
		syncDir(parent)
		return nil
	}
	old := oldDir(final, os.Getpid())
	if err := os.RemoveAll(old); err != nil { // a leftover of an earlier process with our pid
		return fmt.Errorf("replacing %s: removing stale %s: %w", final, old, err)
	}
	if err := dirHook(stepMoveOld); err != nil {
		return err
	}
	if err := os.Rename(final, old); err != nil {
		return fmt.Errorf("replacing %s: moving it aside: %w", final, err)
	}
	if err := dirHook(stepMoveNew); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if rerr := os.Rename(old, final); rerr != nil {
			return fmt.Errorf("replacing %s: %w; the previous copy is at %s (restoring it failed: %v)", final, err, old, rerr)
		}
		return fmt.Errorf("replacing %s: %w", final, err)
	}
	if err := dirHook(stepSync); err != nil {
		return err
	}
	syncDir(parent)
	if err := dirHook(stepRemoveOld); err != nil {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("replaced %s, but removing the previous copy %s failed: %w", final, old, err)
	}
	return nil
}

// RecoverDir finishes or undoes a ReplaceDir on final that a crash
// interrupted: if final is missing and a previous copy was moved aside, that
// copy is renamed back; if final exists, copies moved aside are removed. Left
// over TempDir directories of final are removed too. Entries whose process
// (by the pid in their name) is still running are left alone, except this
// process's own, which it cannot be using if it calls RecoverDir; still, call
// it while holding the lock on the directory that holds final (LockDir) so no
// other run is swapping it.
func RecoverDir(final string) error {
	final = filepath.Clean(final)
	parent, base := filepath.Split(final)
	if parent == "" {
		parent = "."
	}
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recovering %s: %w", final, err)
	}
	var olds, tmps []string
	for _, e := range entries {
		b, pid, isOld, ok := parseLeftover(e.Name())
		if !ok || b != base || !e.IsDir() || (pid != os.Getpid() && filelock.ProcessAlive(pid)) {
			continue
		}
		if isOld {
			olds = append(olds, filepath.Join(parent, e.Name()))
		} else {
			tmps = append(tmps, filepath.Join(parent, e.Name()))
		}
	}
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) && len(olds) > 0 {
		// Several copies aside can only come from several crashed swaps; the
		// newest is the last complete final.
		newest, newestTime := 0, int64(0)
		for i, o := range olds {
			if fi, err := os.Lstat(o); err == nil && fi.ModTime().UnixNano() > newestTime {
				newest, newestTime = i, fi.ModTime().UnixNano()
			}
		}
		if err := os.Rename(olds[newest], final); err != nil {
			return fmt.Errorf("recovering %s from %s: %w", final, olds[newest], err)
		}
		syncDir(parent)
		olds = append(olds[:newest], olds[newest+1:]...)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("recovering %s: %w", final, err)
	}
	for _, p := range append(olds, tmps...) {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("recovering %s: removing %s: %w", final, p, err)
		}
	}
	return nil
}

// RecoverAll runs RecoverDir for every directory in parent that has
// ReplaceDir or TempDir leftovers, including ones whose final directory is
// missing and so cannot be found by listing the finals.
func RecoverAll(parent string) error {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recovering directories in %s: %w", parent, err)
	}
	done := map[string]bool{}
	for _, e := range entries {
		base, _, _, ok := parseLeftover(e.Name())
		if !ok || done[base] {
			continue
		}
		done[base] = true
		if err := RecoverDir(filepath.Join(parent, base)); err != nil {
			return err
		}
	}
	return nil
}

// parseLeftover splits ".<base>.bidora-old-<pid>" or
// ".<base>.bidora-tmp-<pid>-<random>" into its parts.
func parseLeftover(name string) (base string, pid int, isOld, ok bool) {
	if !strings.HasPrefix(name, ".") {
		return "", 0, false, false
	}
	if i := strings.LastIndex(name, oldMarker); i > 1 {
		if pid, err := strconv.Atoi(name[i+len(oldMarker):]); err == nil && pid > 0 {
			return name[1:i], pid, true, true
		}
	}
	if i := strings.LastIndex(name, tmpMarker); i > 1 {
		rest := name[i+len(tmpMarker):]
		if j := strings.IndexByte(rest, '-'); j > 0 {
			if pid, err := strconv.Atoi(rest[:j]); err == nil && pid > 0 {
				return name[1:i], pid, false, true
			}
		}
	}
	return "", 0, false, false
}
