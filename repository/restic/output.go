package restic

import (
	"bytes"
	"encoding/json"
	"time"
)

// maxLineSize bounds a buffered line of restic's JSON output; longer lines
// (never expected) are dropped rather than held in memory.
const maxLineSize = 1 << 20

// lineWriter hands each complete line written to it, without its
// newline, to line. exec.Cmd writes to it from one goroutine.
type lineWriter struct {
	line     func([]byte)
	partial  []byte
	dropping bool
}

// Write splits p into lines and hands on each complete one.
func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.keep(p)
			break
		}
		w.keep(p[:i])
		if !w.dropping {
			w.line(w.partial)
		}
		w.partial, w.dropping = w.partial[:0], false
		p = p[i+1:]
	}
	return n, nil
}

// keep buffers part of a line unless the line grew too long.
func (w *lineWriter) keep(p []byte) {
	if len(w.partial)+len(p) > maxLineSize {
		w.partial, w.dropping = w.partial[:0], true
	}
	if !w.dropping {
		w.partial = append(w.partial, p...)
	}
}

// backupOutput parses `restic backup --json` output line by line as restic
// writes it, turning status lines into throttled progress callbacks and
// keeping the summary. exec.Cmd writes to it from one goroutine; summary is
// read after Wait returns.
type backupOutput struct {
	lineWriter
	progress func(Progress)
	interval time.Duration
	last     time.Time
	summary  *BackupSummary
}

func newBackupOutput(progress func(Progress), interval time.Duration) *backupOutput {
	o := &backupOutput{progress: progress, interval: interval}
	o.line = o.handle
	return o
}

// backupMessage holds the fields of restic's status and summary messages
// that Keepsake uses.
type backupMessage struct {
	MessageType         string  `json:"message_type"`
	SecondsElapsed      float64 `json:"seconds_elapsed"`
	BytesDone           uint64  `json:"bytes_done"`
	SnapshotID          string  `json:"snapshot_id"`
	TotalBytesProcessed uint64  `json:"total_bytes_processed"`
	DataAdded           uint64  `json:"data_added"`
	DataAddedPacked     uint64  `json:"data_added_packed"`
	TotalDuration       float64 `json:"total_duration"`
}

// handle acts on one line; lines that are not JSON are ignored.
func (o *backupOutput) handle(line []byte) {
	var m backupMessage
	if json.Unmarshal(line, &m) != nil {
		return
	}
	switch m.MessageType {
	case "status":
		if o.progress != nil && time.Since(o.last) >= o.interval {
			o.last = time.Now()
			o.progress(Progress{BytesDone: m.BytesDone, SecondsElapsed: m.SecondsElapsed})
		}
	case "summary":
		o.summary = &BackupSummary{
			SnapshotID:          m.SnapshotID,
			TotalBytesProcessed: m.TotalBytesProcessed,
			DataAdded:           m.DataAdded,
			DataAddedPacked:     m.DataAddedPacked,
			Duration:            time.Duration(m.TotalDuration * float64(time.Second)),
		}
		if o.progress != nil {
			o.progress(Progress{BytesDone: m.TotalBytesProcessed, SecondsElapsed: m.TotalDuration})
		}
	}
}
