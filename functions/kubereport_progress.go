package functions

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// transfer is one component's progress for the status: done bytes in
// elapsed time, of total (zero: unknown; estimated: a guess).
type transfer struct {
	done, total uint64
	estimated   bool
	elapsed     time.Duration
}

// status is t as a status's progress, taken at now.
func (t transfer) status(now time.Time) *storagev1alpha1.TransferProgress {
	p := &storagev1alpha1.TransferProgress{
		BytesDone: int64(t.done), Done: humanBytes(t.done), UpdateTime: &metav1.Time{Time: now},
	}
	if t.elapsed > 0 {
		setRate(p, int64(float64(t.done)/t.elapsed.Seconds()))
	}
	setTotal(p, int64(t.total), t.estimated)
	return p
}

// finished is the progress of a component that ended having processed
// size bytes in d: the total is what it did.
func finished(size uint64, d time.Duration, now time.Time) *storagev1alpha1.TransferProgress {
	return transfer{done: size, total: size, elapsed: d}.status(now)
}

func setRate(p *storagev1alpha1.TransferProgress, bps int64) {
	p.BytesPerSecond, p.Rate = bps, ""
	if bps > 0 {
		p.Rate = humanBytes(uint64(bps)) + "/s"
	}
}

func setTotal(p *storagev1alpha1.TransferProgress, total int64, estimated bool) {
	p.TotalBytes, p.TotalEstimated, p.Total = 0, false, ""
	if total <= 0 {
		return
	}
	p.TotalBytes, p.TotalEstimated, p.Total = total, estimated, humanBytes(uint64(total))
	if estimated {
		p.Total += " (estimate)"
	}
}

// componentProgress is one component's progress and whether it still runs.
type componentProgress struct {
	progress *storagev1alpha1.TransferProgress
	running  bool
}

// sumProgress adds the components' progress up: bytes done; the rate of
// those running, or once none runs, the bytes over the time they took;
// the total when every component knows its own, an estimate when one is.
// Nil when no component has progress.
func sumProgress(cs []componentProgress) *storagev1alpha1.TransferProgress {
	var sum storagev1alpha1.TransferProgress
	var runningRate, total int64
	var took float64 // seconds the components took, from their rates
	anyRunning, totalKnown, estimated, found := false, true, false, false
	for _, c := range cs {
		p := c.progress
		if p == nil {
			continue
		}
		found = true
		sum.BytesDone += p.BytesDone
		if c.running {
			anyRunning, runningRate = true, runningRate+p.BytesPerSecond
		} else if p.BytesPerSecond > 0 {
			took += float64(p.BytesDone) / float64(p.BytesPerSecond)
		}
		totalKnown = totalKnown && p.TotalBytes > 0
		total, estimated = total+p.TotalBytes, estimated || p.TotalEstimated
		if sum.UpdateTime == nil || (p.UpdateTime != nil && p.UpdateTime.After(sum.UpdateTime.Time)) {
			sum.UpdateTime = p.UpdateTime
		}
	}
	if !found {
		return nil
	}
	sum.Done = humanBytes(uint64(sum.BytesDone))
	switch {
	case anyRunning:
		setRate(&sum, runningRate)
	case took > 0:
		setRate(&sum, int64(float64(sum.BytesDone)/took))
	}
	if totalKnown {
		setTotal(&sum, total, estimated)
	}
	return &sum
}

// snapshotProgress sums a Snapshot's components.
func snapshotProgress(components map[string]storagev1alpha1.ComponentStatus) *storagev1alpha1.TransferProgress {
	cs := make([]componentProgress, 0, len(components))
	for _, c := range components {
		cs = append(cs, componentProgress{progress: c.Progress, running: c.Phase == storagev1alpha1.ComponentRunning})
	}
	return sumProgress(cs)
}

// restoreLine is a restore's progress for people, e.g. "1.2 GiB of 3.4
// GiB restored, 12 MiB/s".
func restoreLine(p *storagev1alpha1.TransferProgress) string {
	s := p.Done
	if p.Total != "" && p.TotalBytes != p.BytesDone {
		s += " of " + p.Total
	}
	s += " restored"
	if p.Rate != "" {
		s += ", " + p.Rate
	}
	return s
}
