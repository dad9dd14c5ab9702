package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// lockers are the lock implementations: this system's lockFile and the
// lock-file one that systems without file locks use, tested here everywhere.
var lockers = []struct {
	name string
	lock func(ctx context.Context, path string) (func(), error)
}{{"lockFile", lockFile}, {"excl", lockFileExcl}}

func TestLockFileExcludesUntilUnlocked(t *testing.T) {
	for _, l := range lockers {
		t.Run(l.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".locks", "repo", "etag.lock")
			unlock, err := l.lock(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			if _, err := l.lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("second lock while held: err = %v, want the deadline", err)
			}
			got := make(chan error, 1)
			go func() {
				u, err := l.lock(context.Background(), path)
				if err == nil {
					u()
				}
				got <- err
			}()
			time.Sleep(100 * time.Millisecond)
			select {
			case err := <-got:
				t.Fatalf("a waiter got the lock while it was held (err %v)", err)
			default:
			}
			unlock()
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("waiter after unlock: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("waiter still waiting 10s after unlock")
			}
		})
	}
}

// A lock file left by a crashed process (one with no pid, older than
// filelock.StaleAfter) is taken over.
func TestLockFileExclTakesOverStaleLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etag.lock")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock, err := lockFileExcl(ctx, path)
	if err != nil {
		t.Fatalf("over a stale lock: %v", err)
	}
	unlock()
}
