package demo

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Untidy lists what a happy path must not show in the Env's namespace:
// columns of `kubectl get keepsake` that are empty on every row of their
// table (a column a user reads and learns nothing from), and Keepsake's
// Warning Events (warnings are for problems; the kubelet's, such as a
// database's readiness probe failing while it starts, are not Keepsake's).
func (e *Env) Untidy() []string {
	e.T.Helper()
	ctx := Context(e.T, time.Minute)
	var found []string
	out, err := e.Kubectl(ctx, "get", "keepsake", "-n", e.Params.Namespace)
	e.check(err)
	for _, col := range EmptyColumns(out) {
		found = append(found, "empty column "+col)
	}
	var events corev1.EventList
	e.check(e.Kube.List(ctx, &events, client.InNamespace(e.Params.Namespace)))
	for _, ev := range events.Items {
		if ev.Type == corev1.EventTypeWarning && strings.HasPrefix(ev.ReportingController+ev.Source.Component, "keepsake") {
			found = append(found, fmt.Sprintf("Warning Event %s on %s %s: %s", ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message))
		}
	}
	return found
}

// EmptyColumns returns "<table>/<COLUMN>" for each column of kubectl's
// tables (one per kind, separated by blank lines) that no row fills.
// Columns are located by their header's position, as kubectl aligns them.
func EmptyColumns(out string) []string {
	var empty []string
	for _, table := range strings.Split(strings.TrimSpace(out), "\n\n") {
		lines := strings.Split(table, "\n")
		if len(lines) < 2 {
			continue
		}
		header := lines[0]
		starts := columnStarts(header)
		for i, start := range starts {
			end := len(header) + 1<<16
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			filled := false
			for _, row := range lines[1:] {
				if start < len(row) && strings.TrimSpace(row[start:min(end, len(row))]) != "" &&
					strings.TrimSpace(row[start:min(end, len(row))]) != "<none>" {
					filled = true
				}
			}
			if !filled {
				name := strings.Fields(header[start:min(end, len(header))])[0]
				empty = append(empty, strings.Fields(lines[1])[0]+"/"+name)
			}
		}
	}
	return empty
}

// columnStarts returns where each header word begins.
func columnStarts(header string) []int {
	var starts []int
	for i := range header {
		if header[i] != ' ' && (i == 0 || header[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	return starts
}
