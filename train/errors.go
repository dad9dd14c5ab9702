package train

import "fmt"

// OptionError is an invalid Options field. Field is the Go field name; callers that
// took the value from a flag name the flag instead.
type OptionError struct {
	Field, Value, Want string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s %s: want %s", e.Field, e.Value, e.Want)
}

// ResumeMismatchError is a setting that defines the trained adapter (Options.Identity,
// or the data) whose value differs from the checkpoint's: resuming would train
// another adapter than the checkpoint's.
type ResumeMismatchError struct {
	Checkpoint string // the checkpoint directory
	Name       string // the Identity key ("data" for the data fingerprint)
	Saved, Run string // the checkpoint's value and this run's
}

func (e *ResumeMismatchError) Error() string {
	if e.Name == "data" {
		return fmt.Sprintf("%s was trained on other data (fingerprint %s, this run %s); resume with the same data and batching settings", e.Checkpoint, e.Saved, e.Run)
	}
	return fmt.Sprintf("%s was made with %s %s, this run has %s", e.Checkpoint, e.Name, e.Saved, e.Run)
}

// NoDataError is a phase without examples, or (NoLoss) whose examples carry no label
// with loss.
type NoDataError struct {
	Phase  string
	NoLoss bool
}

func (e *NoDataError) Error() string {
	if e.NoLoss {
		return fmt.Sprintf("phase %s: no example has a label that carries loss (all labels are masked)", e.Phase)
	}
	return fmt.Sprintf("phase %s has no training examples", e.Phase)
}

// OutputNotEmptyError is an output directory that holds files of another run.
type OutputNotEmptyError struct {
	Dir   string
	Names []string // a few of its entries
}

func (e *OutputNotEmptyError) Error() string {
	return fmt.Sprintf("%s is not empty (has %v…)", e.Dir, e.Names)
}
