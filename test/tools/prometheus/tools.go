//go:build tools

// Package tools pins Prometheus (its server and promtool) in a module of
// its own: its k8s.io/* versions are not the operator's. The chart's alert
// rules are tested with promtool, and the e2e's Prometheus scrapes the
// operator.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
