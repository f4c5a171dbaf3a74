package jobs

import "fmt"

// Problem is a failure the user caused and fixes, such as a missing
// Repository or Function: reconcilers report it as a condition with Reason
// instead of retrying.
type Problem struct {
	Reason string
	Err    error
}

func (p *Problem) Error() string { return p.Err.Error() }

func (p *Problem) Unwrap() error { return p.Err }

// NewProblem returns a Problem with reason and a formatted message.
func NewProblem(reason, format string, args ...any) *Problem {
	return &Problem{Reason: reason, Err: fmt.Errorf(format, args...)}
}
