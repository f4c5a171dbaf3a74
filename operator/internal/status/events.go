package status

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// PendingEvents holds the Events of one reconciliation pass until the
// status that goes with them is stored. A pass that read a stale copy from
// the cache sees a condition change that an earlier pass already made and
// recorded: its status patch fails with a conflict (a locking patcher) and
// its Events, dropped with it, are not seen twice ("JobCreated (x2)").
type PendingEvents struct {
	to     events.EventRecorder
	events []pendingEvent
}

type pendingEvent struct {
	regarding, related        runtime.Object
	eventType, reason, action string
	note                      string
	args                      []any
}

var _ events.EventRecorder = (*PendingEvents)(nil)

// NewPendingEvents returns an EventRecorder that holds Events for to.
func NewPendingEvents(to events.EventRecorder) *PendingEvents {
	return &PendingEvents{to: to}
}

// Eventf implements events.EventRecorder: it keeps the Event until Flush.
func (p *PendingEvents) Eventf(regarding, related runtime.Object, eventType, reason, action, note string, args ...any) {
	p.events = append(p.events, pendingEvent{regarding, related, eventType, reason, action, note, args})
}

// Flush records the Events held, in order, and forgets them. Call it once
// the pass's status is stored; drop the PendingEvents otherwise.
func (p *PendingEvents) Flush() {
	for _, e := range p.events {
		p.to.Eventf(e.regarding, e.related, e.eventType, e.reason, e.action, e.note, e.args...)
	}
	p.events = nil
}
