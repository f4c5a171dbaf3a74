package cluster

import (
	"context"
	"fmt"
	"io"
)

// Status writes which parts run and whether the node is Ready, and reports
// whether the cluster is healthy. Verbose also lists everything the cluster
// holds on the machine (what Down removes).
func (c Config) Status(ctx context.Context, w io.Writer, verbose bool) bool {
	if verbose {
		for _, l := range c.Leftovers() {
			fmt.Fprintln(w, "  holds:", l)
		}
	}
	for _, name := range stopOrder {
		if pid, ok := c.running(name); ok {
			fmt.Fprintf(w, "%-24s running (pid %d)\n", name, pid)
		} else {
			fmt.Fprintf(w, "%-24s stopped\n", name)
		}
	}
	ok := c.healthy(ctx)
	if ok {
		fmt.Fprintf(w, "node %s Ready; kubeconfig %s\n", c.NodeName, c.AdminKubeconfig())
		return true
	}
	fmt.Fprintln(w, "cluster is not up")
	if !verbose {
		for _, l := range c.Leftovers() {
			fmt.Fprintln(w, "  holds:", l)
		}
	}
	return false
}
