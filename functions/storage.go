package functions

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// StorageTrouble says restic is retrying requests that its storage failed,
// or that the storage answers again.
type StorageTrouble struct {
	// Repository is the repository's name.
	Repository string `json:"repository"`
	// Component is the component the run works on, if any.
	Component string `json:"component,omitempty"`
	// Since is when restic first retried, in this stretch of trouble.
	Since time.Time `json:"since"`
	// Message is restic's latest retry message; empty once a retried
	// request succeeded.
	Message string `json:"message,omitempty"`
}

// StorageTroubleReporter is a reporter that can tell a run's storage is
// failing while restic still retries (before the run fails for it, if it
// does). Reporters that are not one leave it to restic's own log lines.
type StorageTroubleReporter interface {
	// StorageTrouble reports t, best effort: it drops what it cannot
	// write.
	StorageTrouble(ctx context.Context, t StorageTrouble)
}

// storageWatch turns restic's retry notes (restic.Config.OnStorageRetry)
// into StorageTrouble reports: at once when the trouble begins and when it
// ends, and while it lasts at most every interval with restic's latest
// message. A note never waits for a report: while one is written, only
// the latest note is kept.
type storageWatch struct {
	notes   chan string
	stopped chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex // serialises note's replace-the-latest and stop's close
}

// watchStorage starts a watch reporting to rep (if it can hear storage
// trouble) about repository and component. Its note is what
// OnStorageRetry calls; stop ends it, after any report in flight.
func watchStorage(ctx context.Context, rep Reporter, every time.Duration, about StorageTrouble) *storageWatch {
	w := &storageWatch{notes: make(chan string, 1), stopped: make(chan struct{})}
	r, ok := rep.(StorageTroubleReporter)
	if !ok {
		close(w.stopped)
		return w
	}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		w.run(ctx, r, every, about)
	}()
	return w
}

func (w *storageWatch) run(ctx context.Context, r StorageTroubleReporter, every time.Duration, t StorageTrouble) {
	var last time.Time // of the last report of trouble
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stopped:
			return
		case msg := <-w.notes:
			now := time.Now()
			troubled := !t.Since.IsZero()
			switch {
			case msg == "" && troubled:
				t.Since, t.Message = time.Time{}, ""
			case msg != "" && !troubled:
				t.Since, t.Message, last = now, msg, now
			case msg != "" && now.Sub(last) >= every:
				t.Message, last = msg, now
			default:
				continue
			}
			r.StorageTrouble(ctx, t)
		}
	}
}

// note hands restic's note on, replacing one not yet taken.
func (w *storageWatch) note(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.stopped:
		return
	default:
	}
	select {
	case w.notes <- msg:
	default:
		select {
		case <-w.notes:
		default:
		}
		w.notes <- msg
	}
}

// stop ends the watch and waits for its report in flight, so that none
// lands after the run's result.
func (w *storageWatch) stop() {
	w.mu.Lock()
	select {
	case <-w.stopped: // stopped before, or a watch with no one to report to
	default:
		close(w.stopped)
	}
	w.mu.Unlock()
	w.done.Wait()
}

// setStorageTrouble sets condition StorageUnreachable in conds while t
// has a message, and removes it once t has none; it reports whether conds
// changed.
func setStorageTrouble(conds *[]metav1.Condition, generation int64, t StorageTrouble) bool {
	if t.Message == "" {
		return meta.RemoveStatusCondition(conds, storagev1alpha1.ConditionStorageUnreachable)
	}
	return meta.SetStatusCondition(conds, metav1.Condition{
		Type: storagev1alpha1.ConditionStorageUnreachable, Status: metav1.ConditionTrue, ObservedGeneration: generation,
		Reason: storagev1alpha1.ReasonStorageRetrying, Message: t.message(),
	})
}

// message is what a status shows of t.
func (t StorageTrouble) message() string {
	return fmt.Sprintf("restic has been retrying requests to the storage of repository %s since %s: %s",
		t.Repository, t.Since.UTC().Format(time.RFC3339), t.Message)
}
