package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// makeDir fills dir with files.
func makeDir(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	oldSet = map[string]string{"weights": "old weights", "config": "old config"}
	newSet = map[string]string{"weights": "new weights", "config": "new config", "extra": "new extra"}
)

func sameSet(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestReplaceDir(t *testing.T) {
	parent := t.TempDir()
	final := filepath.Join(parent, "out")
	for i, set := range []map[string]string{oldSet, newSet} {
		tmp, err := TempDir(final)
		if err != nil {
			t.Fatal(err)
		}
		makeDir(t, tmp, set)
		if err := ReplaceDir(tmp, final); err != nil {
			t.Fatal(err)
		}
		if got := readDir(t, final); !sameSet(got, set) {
			t.Fatalf("round %d: final = %v", i, got)
		}
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Fatalf("round %d: leftovers: %v", i, entries)
		}
	}
}

// A crash before any step of the swap, new or replacing, leaves a complete
// copy at final once RecoverDir has run, and no leftovers.
func TestReplaceDirCrashAtEachStep(t *testing.T) {
	crash := errors.New("crash")
	defer func() { dirHook = func(int) error { return nil } }()
	for _, existing := range []bool{true, false} {
		for step := stepMoveOld; step <= stepRemoveOld; step++ {
			parent := t.TempDir()
			final := filepath.Join(parent, "out")
			if existing {
				if err := os.Mkdir(final, 0o755); err != nil {
					t.Fatal(err)
				}
				makeDir(t, final, oldSet)
			}
			tmp, err := TempDir(final)
			if err != nil {
				t.Fatal(err)
			}
			makeDir(t, tmp, newSet)
			dirHook = func(s int) error {
				if s == step {
					return crash
				}
				return nil
			}
			err = ReplaceDir(tmp, final)
			dirHook = func(int) error { return nil }
			stopped := errors.Is(err, crash)
			if !stopped && err != nil {
				t.Fatalf("existing=%v step %d: %v", existing, step, err)
			}
			if err := RecoverDir(final); err != nil {
				t.Fatalf("existing=%v step %d: recover: %v", existing, step, err)
			}
			switch got, _ := os.ReadDir(final); {
			case !existing && stopped && step == stepMoveNew:
				// Crashed before the first copy ever appeared: nothing to keep.
				if got != nil {
					t.Fatalf("step %d: final appeared: %v", step, got)
				}
			default:
				files := readDir(t, final)
				if !sameSet(files, oldSet) && !sameSet(files, newSet) {
					t.Fatalf("existing=%v step %d: final holds %v, neither copy", existing, step, files)
				}
				if step > stepMoveNew && !sameSet(files, newSet) {
					t.Fatalf("existing=%v step %d: the new copy was lost: %v", existing, step, files)
				}
			}
			if entries, _ := os.ReadDir(parent); len(entries) > 1 {
				t.Fatalf("existing=%v step %d: leftovers after recovery: %v", existing, step, entries)
			}
		}
	}
}

// When final is missing, RecoverAll finds the copy moved aside by its name.
func TestRecoverAllRestoresMissingFinal(t *testing.T) {
	parent := t.TempDir()
	final := filepath.Join(parent, "checkpoint-3")
	aside := oldDir(final, os.Getpid())
	if err := os.Mkdir(aside, 0o755); err != nil {
		t.Fatal(err)
	}
	makeDir(t, aside, oldSet)
	if err := RecoverAll(parent); err != nil {
		t.Fatal(err)
	}
	if got := readDir(t, final); !sameSet(got, oldSet) {
		t.Fatalf("final = %v", got)
	}
}

// Leftovers of a process that still runs belong to a swap in progress.
func TestRecoverDirLeavesLiveProcessAlone(t *testing.T) {
	parent := t.TempDir()
	final := filepath.Join(parent, "out")
	live := filepath.Join(parent, ".out"+tmpMarker+"1-x") // pid 1 always runs
	if err := os.Mkdir(live, 0o755); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(parent, ".out"+tmpMarker+strconv.Itoa(os.Getpid())+"-y")
	if err := os.Mkdir(dead, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RecoverDir(final); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("a live process's directory was removed: %v", err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("a stale directory was kept: %v", err)
	}
}

func TestParseLeftover(t *testing.T) {
	for name, want := range map[string]struct {
		base  string
		pid   int
		isOld bool
		ok    bool
	}{
		".out.bidora-old-12":    {"out", 12, true, true},
		".a.b.bidora-tmp-7-123": {"a.b", 7, false, true},
		"out.bidora-old-12":     {ok: false},
		".out.bidora-old-x":     {ok: false},
		".out.bidora-tmp-12":    {ok: false},
		".bidora-old-12":        {ok: false},
		".checkpoint-5.tmp":     {ok: false},
	} {
		b, pid, isOld, ok := parseLeftover(name)
		if ok != want.ok || (ok && (b != want.base || pid != want.pid || isOld != want.isOld)) {
			t.Errorf("%s: got %q %d %v %v", name, b, pid, isOld, ok)
		}
	}
}
