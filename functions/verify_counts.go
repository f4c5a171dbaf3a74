package functions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// dumpCounter counts dumps with the backup's driver (sdk.Verifier), which
// it starts on first use and keeps for the other components.
type dumpCounter struct {
	// driver is the driver binary's path; empty for none, and noDriver
	// then says why.
	driver, noDriver string
	// log receives the driver's log; nil means os.Stderr.
	log io.Writer

	client *sdk.Client
	// note says why counts are not checked, once that is known.
	note string
}

// driverStartError is a driver that could not be started or asked what
// it is: it says nothing about the data, so the verification has no
// verdict.
type driverStartError struct{ err error }

func (e *driverStartError) Error() string {
	return "start the driver to count the dump: " + e.err.Error()
}
func (e *driverStartError) Unwrap() error { return e.err }

// open starts the driver unless done already, and returns it, or nil with
// the note that says why counts cannot be checked.
func (d *dumpCounter) open(ctx context.Context) (*sdk.Client, string, error) {
	if d.client != nil || d.note != "" {
		return d.client, d.note, nil
	}
	if d.driver == "" {
		d.note = "counts not checked: the verify Job has no driver"
		if d.noDriver != "" {
			d.note += " (" + d.noDriver + ")"
		}
		return nil, d.note, nil
	}
	drv, info, err := openDriverInfo(ctx, Common{Driver: d.driver, Log: d.log})
	if err != nil {
		return nil, "", &driverStartError{err: err}
	}
	if !slices.Contains(info.Capabilities, sdk.CapabilityVerify) {
		drv.Close()
		d.note = fmt.Sprintf("counts not checked: driver %s %s cannot count a dump", info.Name, info.Version)
		return nil, d.note, nil
	}
	d.client = drv
	return drv, "", nil
}

// close ends the driver, if it was started.
func (d *dumpCounter) close() {
	if d.client != nil {
		d.client.Close()
	}
}

// errDriverDone stops a dump whose driver has stopped reading.
var errDriverDone = errors.New("the driver stopped reading the dump")

// count runs dump into sink and, through a pipe, into the driver's
// Verify, and returns what the driver counted. Without a driver that can
// count, it runs dump into sink alone and returns the note that says why.
// A dump that fails on its own is its error (the driver only saw the
// stream break); else the driver's error, which says where the dump does
// not parse, is.
func (d *dumpCounter) count(ctx context.Context, component string, sink io.Writer, dump func(io.Writer) error) (map[string]uint64, string, error) {
	drv, note, err := d.open(ctx)
	if err != nil {
		return nil, "", err
	}
	if drv == nil {
		return nil, note, dump(sink)
	}
	pr, pw := io.Pipe()
	dumped := make(chan error, 1)
	go func() {
		err := dump(io.MultiWriter(sink, pw))
		_ = pw.CloseWithError(err) // nil: the driver reads io.EOF
		dumped <- err
	}()
	res, verr := drv.Verify(ctx, &sdk.VerifyRequest{Request: sdk.Request{Component: component}}, pr)
	_ = pr.CloseWithError(errDriverDone) // a driver that stopped early stops restic
	derr := <-dumped
	switch {
	case verr == nil:
		return res.Counts, "", nil
	case derr != nil && errors.Is(verr, derr):
		return nil, "", derr
	}
	return nil, "", verr
}

// countsProblem compares the recorded counts with those counted; "" when
// every recorded count was counted the same.
func countsProblem(recorded map[string]int64, counted map[string]uint64) string {
	if counted == nil {
		return ""
	}
	var diffs []string
	for _, unit := range slices.Sorted(maps.Keys(recorded)) {
		got, ok := counted[unit]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("the driver counted no %s, the backup recorded %d", unit, recorded[unit]))
		case int64(got) != recorded[unit]:
			diffs = append(diffs, fmt.Sprintf("counted %d %s in the dump, the backup recorded %d", got, unit, recorded[unit]))
		}
	}
	return strings.Join(diffs, ", ")
}

// countsSummary says what was checked of a component's counts: the
// counts that matched, or why none were checked.
func countsSummary(c ComponentCheck) []string {
	if c.Counts == nil {
		if c.CountsNote != "" {
			return []string{c.CountsNote}
		}
		return nil
	}
	var out []string
	for _, unit := range slices.Sorted(maps.Keys(c.RecordedCounts)) {
		out = append(out, fmt.Sprintf("%d %s", c.RecordedCounts[unit], unit))
	}
	return []string{strings.Join(out, " and ") + " as recorded"}
}
