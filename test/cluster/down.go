package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Down stops the cluster and removes every process, mount, network
// namespace, iptables chain, link and cgroup of it, then checks that none
// is left. Logs and certificates stay in StateDir until the next Up (or
// until purge removes StateDir too).
func (c Config) Down(ctx context.Context, log io.Writer, purge bool) error {
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.cleanUp(ctx, log); err != nil {
		return err
	}
	if left := c.Leftovers(); len(left) > 0 {
		return fmt.Errorf("left behind after down: %s", strings.Join(left, "; "))
	}
	if purge {
		return os.RemoveAll(c.StateDir)
	}
	return nil
}

// cleanUp undoes everything a running or killed cluster holds on the
// machine, in an order that keeps each step from being undone by another
// part: the node's agents stop before its containers are killed, and
// containers die before their mounts and network go.
func (c Config) cleanUp(ctx context.Context, log io.Writer) error {
	if err := c.stop("kubelet", syscall.SIGTERM, 10*time.Second); err != nil {
		return err
	}
	if err := killContainers(); err != nil {
		return err
	}
	for _, name := range stopOrder[1:] {
		sig := syscall.SIGTERM
		if name == "postgres" {
			sig = syscall.SIGINT // fast shutdown; SIGTERM waits for clients
		}
		if err := c.stop(name, sig, 15*time.Second); err != nil {
			return err
		}
	}
	for _, p := range c.strayProcesses() {
		fmt.Fprintf(log, "killing stray process %d: %s\n", p.pid, p.cmdline)
		_ = terminate(pidRecord{pid: p.pid, exe: p.exe}, syscall.SIGKILL, 5*time.Second)
	}
	steps := []func() error{killContainers, c.unmountAll, removeStrayNetns, c.resetIptables, c.removeLinks,
		c.restoreSysctls, c.removeHostFiles}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return os.RemoveAll(c.RunDir)
}

// resetIptables lets kube-proxy remove its rules, then removes whatever
// chains of ours remain (the kubelet's, the CNI plugins', the guard).
func (c Config) resetIptables() error {
	if len(ownedChains()) == 0 {
		return nil
	}
	if _, err := os.Stat(c.bin("kube-proxy")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Its exit status reports rules it found nothing to do for; the sweep
		// below is what must succeed.
		_ = exec.CommandContext(ctx, c.bin("kube-proxy"), "--cleanup", "--v=0").Run()
	}
	return removeChains()
}

// removeHostFiles removes what the parts write outside the state
// directories: the kubelet's container log links and the CNI result cache.
func (c Config) removeHostFiles() error {
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && under(target, c.StateDir) {
			_ = os.Remove(l)
		}
	}
	for _, r := range c.cniResults() {
		if err := os.Remove(r); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// cniResults lists the CNI result cache entries of the cluster's pods: those
// of its network and the loopback ones whose sandbox is one of its network
// namespaces (containerd 1.6 never deletes the latter).
func (c Config) cniResults() []string {
	files, _ := filepath.Glob("/var/lib/cni/results/*")
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.HasPrefix(filepath.Base(f), "keepsake-") || strings.Contains(string(data), `"sandbox":"`+c.RunDir+"/") {
			out = append(out, f)
		}
	}
	return out
}

// Leftovers lists anything of the cluster still on the machine: running
// parts, container processes, mounts, iptables chains, links and cgroups.
// After Down it is empty.
func (c Config) Leftovers() []string {
	var left []string
	for _, name := range stopOrder {
		if pid, ok := c.running(name); ok {
			left = append(left, fmt.Sprintf("process %s (pid %d)", name, pid))
		}
	}
	for _, p := range c.strayProcesses() {
		left = append(left, fmt.Sprintf("process %d (%s)", p.pid, p.cmdline))
	}
	for _, pid := range cgroupProcesses() {
		left = append(left, fmt.Sprintf("container process %d", pid))
	}
	for _, m := range c.ownedMounts() {
		left = append(left, "mount "+m)
	}
	for _, ns := range strayNetns() {
		left = append(left, "network namespace "+ns)
	}
	for _, ch := range ownedChains() {
		left = append(left, "iptables chain "+ch)
	}
	for _, l := range c.ownedLinks() {
		left = append(left, "link "+l)
	}
	for _, cg := range ownedCgroups() {
		left = append(left, "cgroup "+cg)
	}
	for _, r := range c.cniResults() {
		left = append(left, "CNI result cache "+r)
	}
	if _, err := os.Stat(c.state("sysctl.orig")); err == nil {
		left = append(left, "sysctls not restored ("+c.state("sysctl.orig")+")")
	}
	return left
}
