package restic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Kinds of restic failures a caller reacts to. A *CommandError unwraps to
// at most one of them; test with errors.Is.
var (
	// ErrWrongPassword: no key in the repository opens with the password.
	ErrWrongPassword = errors.New("wrong repository password")
	// ErrRepositoryMissing: there is no repository at the location.
	ErrRepositoryMissing = errors.New("repository does not exist")
	// ErrLocked: another restic holds a conflicting lock (see Unlock).
	ErrLocked = errors.New("repository is locked")
	// ErrUnreachable: the storage cannot be reached (network, DNS, TLS).
	ErrUnreachable = errors.New("storage unreachable")
	// ErrAccessDenied: the storage refused the credentials or an action.
	ErrAccessDenied = errors.New("storage access denied")
	// ErrIntegrity: check found damage in the repository.
	ErrIntegrity = errors.New("repository integrity check failed")
)

// Exit codes restic 0.18 documents for specific failures (1 is any other
// fatal error, 3 an incomplete backup).
const (
	exitNoRepository  = 10
	exitLocked        = 11
	exitWrongPassword = 12
)

// CommandError is a failed restic run.
type CommandError struct {
	// Op is the restic command, e.g. "backup".
	Op string
	// Repository is the repository string (holds no secret).
	Repository string
	// ExitCode is restic's exit status, -1 when it was killed.
	ExitCode int
	// Message is the last thing restic reported on standard error.
	Message string
	// Kind is one of the Err* values above, or nil.
	Kind error
}

// Error says what failed, how, and restic's last message.
func (e *CommandError) Error() string {
	s := fmt.Sprintf("restic %s %s: exit code %d", e.Op, e.Repository, e.ExitCode)
	if e.Kind != nil {
		s += ": " + e.Kind.Error()
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the error's Kind.
func (e *CommandError) Unwrap() error { return e.Kind }

// messageKinds maps fragments of restic's messages (lower case) to kinds,
// checked in order after the exit code. Network failures come before
// "is there a repository", which restic also prints when it cannot reach
// the storage at all.
var messageKinds = []struct {
	fragment string
	kind     error
}{
	{"wrong password or no key found", ErrWrongPassword},
	{"repository is already locked", ErrLocked},
	{"unable to create lock", ErrLocked},
	{"connection refused", ErrUnreachable},
	{"no such host", ErrUnreachable},
	{"i/o timeout", ErrUnreachable},
	{"network is unreachable", ErrUnreachable},
	{"no route to host", ErrUnreachable},
	{"connection reset by peer", ErrUnreachable},
	{"tls handshake", ErrUnreachable},
	{"certificate signed by unknown authority", ErrUnreachable},
	{"certificate is valid for", ErrUnreachable},
	{"server misbehaving", ErrUnreachable},
	{"timeout awaiting response headers", ErrUnreachable},
	{"access denied", ErrAccessDenied},
	{"access key id you provided does not exist", ErrAccessDenied},
	{"signature we calculated does not match", ErrAccessDenied},
	{"repository does not exist", ErrRepositoryMissing},
	{"repository contains errors", ErrIntegrity},
}

// classify returns the kind of a failed run from its exit code and its
// standard error, or nil when neither says.
func classify(exitCode int, stderr string) error {
	switch exitCode {
	case exitNoRepository:
		return ErrRepositoryMissing
	case exitLocked:
		return ErrLocked
	case exitWrongPassword:
		return ErrWrongPassword
	}
	lower := strings.ToLower(stderr)
	for _, m := range messageKinds {
		if strings.Contains(lower, m.fragment) {
			return m.kind
		}
	}
	return nil
}

// lastMessage returns restic's final word from its standard error: the
// message of a JSON exit_error if there is one, else the last non-empty
// lines of text.
func lastMessage(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var exit struct {
			MessageType string `json:"message_type"`
			Message     string `json:"message"`
		}
		if json.Unmarshal([]byte(lines[i]), &exit) == nil && exit.MessageType == "exit_error" {
			return strings.TrimSpace(exit.Message)
		}
	}
	const keep = 3
	if len(lines) > keep {
		lines = lines[len(lines)-keep:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// damageLines is how many of check's damage reports an error keeps, and
// damageLineLength how much of each.
const (
	damageLines      = 3
	damageLineLength = 300
)

// damageReport returns the lines of `restic check`'s standard error that
// say what is damaged ("pack 560d... contains 2 errors: ...", "error for
// tree ...", "error: ..."), at most damageLines of them, or "".
func damageReport(stderr string) string {
	var found []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		lower := strings.ToLower(line)
		if !strings.HasPrefix(lower, "pack ") && !strings.HasPrefix(lower, "error") && !strings.HasPrefix(lower, "tree ") {
			continue
		}
		if len(line) > damageLineLength {
			line = line[:damageLineLength] + "..."
		}
		if found = append(found, line); len(found) == damageLines {
			break
		}
	}
	return strings.Join(found, "; ")
}
