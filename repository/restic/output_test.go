package restic

import (
	"strings"
	"testing"
	"time"
)

func TestBackupOutputParsesStatusAndSummary(t *testing.T) {
	var got []Progress
	o := newBackupOutput(func(p Progress) { got = append(got, p) }, time.Hour)
	lines := `{"message_type":"status","seconds_elapsed":1,"percent_done":0,"bytes_done":100}
{"message_type":"status","seconds_elapsed":2,"percent_done":0,"bytes_done":200}
not json
{"message_type":"summary","snapshot_id":"abc","total_bytes_processed":300,"data_added":250,"data_added_packed":120,"total_duration":1.5}
`
	// Written in awkward pieces, as a pipe may deliver it.
	for _, chunk := range []string{lines[:10], lines[10:95], lines[95:]} {
		if _, err := o.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	want := []Progress{{BytesDone: 100, SecondsElapsed: 1}, {BytesDone: 300, SecondsElapsed: 1.5}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("progress calls %+v, want %+v (throttled status, then the final one)", got, want)
	}
	s := o.summary
	if s == nil || s.SnapshotID != "abc" || s.TotalBytesProcessed != 300 || s.DataAdded != 250 ||
		s.DataAddedPacked != 120 || s.Duration != 1500*time.Millisecond {
		t.Fatalf("summary %+v", s)
	}
}

func TestBackupOutputDropsOverlongLines(t *testing.T) {
	o := newBackupOutput(nil, time.Second)
	long := `{"message_type":"summary","snapshot_id":"` + strings.Repeat("x", maxLineSize) + `"}` + "\n"
	_, _ = o.Write([]byte(long))
	_, _ = o.Write([]byte(`{"message_type":"summary","snapshot_id":"ok"}` + "\n"))
	if o.summary == nil || o.summary.SnapshotID != "ok" || cap(o.partial) > 2*maxLineSize {
		t.Fatalf("summary %+v, buffer capacity %d", o.summary, cap(o.partial))
	}
}
