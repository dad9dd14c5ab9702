//go:build long

// Package chaos kills `bidora train` at random moments — while stepping, evaluating
// and saving, with SIGKILL (a crash) and SIGINT (Ctrl-C) — resumes it with
// `--resume latest` each time, and checks that the adapter it finally writes is byte
// for byte the adapter of an uninterrupted run. Run it with
//
//	go test -tags long ./tools/chaos -v
package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bidora/bidora/internal/examples"
	"github.com/bidora/bidora/internal/tinymodel"
)

func TestKillAndResumeIsByteExact(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bidora")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/bidora")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	model := filepath.Join(dir, "model")
	if err := tinymodel.Write(model, tinymodel.Options{Arch: "llama", HiddenSize: 64, IntermediateSize: 128,
		NumLayers: 3, NumHeads: 4, NumKVHeads: 2, Tied: true, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	trainFile, valFile, err := examples.Write(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"dora", "bidora"} {
		t.Run(method, func(t *testing.T) {
			args := func(out string) []string {
				return []string{"train", "--model", model, "--train-file", trainFile, "--val-file", valFile, "--output", out,
					"--method", method, "--rank", "4", "--dropout", "0.1", "--batch-size", "2", "--grad-accum", "2",
					"--max-steps", "24", "--save-steps", "3", "--eval-steps", "2", "--lr", "3e-3", "--max-seq-len", "96",
					"--threads", "2", "--auto-hardware=false", "--quantization", "none", "--log-format", "json"}
			}
			ref := filepath.Join(dir, method+"-ref")
			start := time.Now()
			if out, err := exec.Command(bin, args(ref)...).CombinedOutput(); err != nil {
				t.Fatalf("reference run: %v\n%s", err, out)
			}
			_ = start
			// The steps of the whole run (BiDoRA: both phases) and the time one takes,
			// from the reference run's metrics.
			var steps int
			var elapsed float64
			metrics, err := os.ReadFile(filepath.Join(ref, "metrics.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range bytes.Split(bytes.TrimSpace(metrics), []byte("\n")) {
				var m struct {
					Step     int     `json:"step"`
					ElapsedS float64 `json:"elapsed_s"`
				}
				if err := json.Unmarshal(l, &m); err != nil {
					t.Fatal(err)
				}
				steps, elapsed = m.Step, m.ElapsedS
			}
			stepTime := time.Duration(elapsed / float64(steps) * float64(time.Second))
			out := filepath.Join(dir, method+"-chaos")
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
			kills, done := 0, false
			for attempt := 0; attempt < 40 && !done; attempt++ {
				a := args(out)
				if _, err := os.Stat(out); err == nil {
					if cks, _ := filepath.Glob(filepath.Join(out, "checkpoint-*", "trainer_state.json")); len(cks) > 0 {
						a = append(a, "--resume", "latest")
					} else {
						a = append(a, "--overwrite")
					}
				}
				cmd := exec.Command(bin, a...)
				var stderr bytes.Buffer
				pipe, err := cmd.StderrPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// Kill once the run has logged a randomly chosen step, after a random
				// delay of up to one and a half steps: the signal lands in a step, an
				// evaluation (every 2 steps) or a save (every 3) alike.
				from := 0 // the step the run resumes at
				if cks, _ := filepath.Glob(filepath.Join(out, "checkpoint-*")); len(a) > 0 && a[len(a)-1] == "latest" {
					for _, c := range cks {
						var n int
						if _, err := fmt.Sscanf(filepath.Base(c), "checkpoint-%d", &n); err == nil && n > from {
							from = n
						}
					}
				}
				target := from + 1 + rng.IntN(max(1, steps-3-from))
				delay := time.Duration(rng.Int64N(int64(stepTime) * 3 / 2))
				reached := make(chan struct{})
				go func() {
					sc := bufio.NewScanner(io.TeeReader(pipe, &stderr))
					fired := false
					for sc.Scan() {
						var line struct {
							Step int `json:"step"`
						}
						if !fired && json.Unmarshal(sc.Bytes(), &line) == nil && line.Step >= target {
							fired = true
							close(reached)
						}
					}
				}()
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				sig := syscall.SIGKILL
				if rng.IntN(3) == 0 {
					sig = syscall.SIGINT
				}
				kill := reached
				if kills >= 6 { // enough: let it finish
					kill = nil
				}
				select {
				case err := <-exited:
					if err != nil {
						t.Fatalf("run %d exited on its own with %v\n%s", attempt, err, stderr.Bytes())
					}
					done = true
				case <-kill:
					time.Sleep(delay)
					_ = cmd.Process.Signal(sig)
					err := <-exited
					if err != nil {
						kills++
					}
					if n := bytes.Count(stderr.Bytes(), []byte("training interrupted")); sig == syscall.SIGINT && err != nil && n > 1 {
						t.Errorf("run %d: the interruption is reported %d times:\n%s", attempt, n, stderr.Bytes())
					}
					t.Logf("run %d: %v %v after step %d (%v)", attempt, sig, delay.Round(time.Microsecond), target, err)
					if err == nil {
						done = true // finished before the signal took effect
					}
				}
			}
			if !done {
				t.Fatal("the run never finished")
			}
			if kills < 2 {
				t.Errorf("only %d kills landed: the runs are too short to test anything", kills)
			}
			for _, f := range []string{"adapter_model.safetensors", "adapter_config.json"} {
				want, err := os.ReadFile(filepath.Join(ref, f))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(out, f))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s after %d kills differs from the uninterrupted run's", f, kills)
				}
			}
			fmt.Fprintf(os.Stderr, "chaos %s: %d kills, adapter byte-identical\n", method, kills)
		})
	}
}
