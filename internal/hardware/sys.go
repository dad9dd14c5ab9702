package hardware

import "errors"

// errUnsupported means this system has no call for a source; the error
// reading /proc stands.
var errUnsupported = errors.New("not supported on this system")
