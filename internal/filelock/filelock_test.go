package filelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// modes are this system's file lock and the O_EXCL lock file that systems without
// file locks use, tested here everywhere.
var modes = []struct {
	name string
	excl bool
}{{"filelock", false}, {"excl", true}}

// A second TryLock fails with a *BusyError naming the holder until the first is
// released; Remove decides whether the file stays.
func TestTryLockExcludesUntilReleased(t *testing.T) {
	for _, m := range modes {
		for _, remove := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/remove=%v", m.name, remove), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "x.lock")
				o := Options{WritePID: true, Remove: remove, Excl: m.excl, Offset: 1 << 40}
				l, err := TryLock(path, o)
				if err != nil {
					t.Fatal(err)
				}
				_, err = TryLock(path, o)
				var busy *BusyError
				if !errors.As(err, &busy) || busy.PID != os.Getpid() || busy.Path != path {
					t.Fatalf("second TryLock: err = %v", err)
				}
				if err := l.Release(); err != nil {
					t.Fatal(err)
				}
				if err := l.Release(); err != nil {
					t.Fatalf("second Release: %v", err)
				}
				_, err = os.Stat(path)
				if gone := os.IsNotExist(err); gone != (remove || m.excl) {
					t.Fatalf("after Release with Remove=%v: stat err = %v", remove, err)
				}
				l2, err := TryLock(path, o)
				if err != nil {
					t.Fatalf("relock after Release: %v", err)
				}
				_ = l2.Release()
			})
		}
	}
}

// Wait blocks while the lock is held, returns once it is released, and gives up
// when its context ends.
func TestWaitWaitsForRelease(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			o := Options{Excl: m.excl}
			l, err := TryLock(path, o)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
			defer cancel()
			if _, err := Wait(ctx, path, o); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Wait while held: err = %v, want the deadline", err)
			}
			got := make(chan error, 1)
			go func() {
				l2, err := Wait(context.Background(), path, o)
				if err == nil {
					err = l2.Release()
				}
				got <- err
			}()
			time.Sleep(100 * time.Millisecond)
			select {
			case err := <-got:
				t.Fatalf("a waiter got the lock while it was held (err %v)", err)
			default:
			}
			_ = l.Release()
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("waiter after release: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("waiter still waiting 10 s after release")
			}
		})
	}
}

// An O_EXCL lock file is taken over when its pid no longer runs, or when it has no
// pid and is older than StaleAfter; otherwise it is busy.
func TestExclTakesOverOnlyStaleLocks(t *testing.T) {
	saved := ProcessAlive
	t.Cleanup(func() { ProcessAlive = saved })
	ProcessAlive = func(pid int) bool { return pid != 424242 }
	old := time.Now().Add(-2 * StaleAfter)
	for _, c := range []struct {
		name    string
		content string
		mtime   time.Time
		stale   bool
	}{
		{"dead pid", "424242\n", time.Now(), true},
		{"live pid", "424243\n", old, false},
		{"no pid, old", "", old, true},
		{"no pid, new", "", time.Now(), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, c.mtime, c.mtime); err != nil {
				t.Fatal(err)
			}
			l, err := TryLock(path, Options{Excl: true})
			if !c.stale {
				var busy *BusyError
				if !errors.As(err, &busy) {
					t.Fatalf("over a live lock: err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("over a stale lock: %v", err)
			}
			if got := ReadPID(path); got != os.Getpid() {
				t.Fatalf("lock file names pid %d, want %d", got, os.Getpid())
			}
			_ = l.Release()
		})
	}
}
