package cluster

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoot is the kubelet's cgroupRoot: every pod's cgroup lives below it
// in each cgroup v1 hierarchy.
const cgroupRoot = "keepsake"

// ownedMounts lists mount points under the state and run directories (the
// kubelet's root bind mount, pod volumes, container root filesystems, shm,
// network namespaces), deepest first.
func (c Config) ownedMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if under(mp, c.StateDir) || under(mp, c.RunDir) {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll unmounts everything under the state and run directories,
// detaching lazily what is still busy. Stacked mounts take several rounds.
func (c Config) unmountAll() error {
	for round := 0; round < 10; round++ {
		mounts := c.ownedMounts()
		if len(mounts) == 0 {
			return nil
		}
		for _, mp := range mounts {
			if err := syscall.Unmount(mp, 0); err != nil {
				_ = syscall.Unmount(mp, syscall.MNT_DETACH)
			}
		}
	}
	if left := c.ownedMounts(); len(left) > 0 {
		return fmt.Errorf("mounts left: %s", strings.Join(left, ", "))
	}
	return nil
}

// cgroupHierarchies lists the mounted cgroup v1 hierarchies (cpu, memory,
// name=systemd, ...) by directory; withUnified adds the cgroup v2 hierarchy
// of a hybrid set-up, where runc also creates the pods' cgroups.
func cgroupHierarchies(withUnified bool) []string {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && (withUnified || e.Name() != "unified") {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out
}

// createCgroupRoot makes /keepsake in every hierarchy; the kubelet refuses a
// cgroupRoot that does not exist. cpuset children start empty, so copy the
// parent's CPUs and memory nodes.
func createCgroupRoot() error {
	for _, h := range cgroupHierarchies(false) {
		dir := filepath.Join(h, cgroupRoot)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if filepath.Base(h) != "cpuset" {
			continue
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(h, f))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
				return fmt.Errorf("set %s/%s: %w", dir, f, err)
			}
		}
	}
	return nil
}

// ownedCgroups lists the cgroup directories below /keepsake, deepest first.
func ownedCgroups() []string {
	var out []string
	for _, h := range cgroupHierarchies(true) {
		root := filepath.Join(h, cgroupRoot)
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// cgroupProcesses lists the PIDs in the cgroups below /keepsake: the pods'
// containers.
func cgroupProcesses() []int {
	seen := map[int]bool{}
	var pids []int
	for _, cg := range ownedCgroups() {
		data, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// killContainers kills every process in the pods' cgroups and removes the
// cgroups once they are empty.
func killContainers() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := cgroupProcesses()
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container processes survive SIGKILL: %v", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, cg := range ownedCgroups() {
		if err := removeCgroup(cg); err != nil {
			return err
		}
	}
	return nil
}

// removeCgroup removes an empty cgroup, retrying while the kernel still
// tears down its last tasks.
func removeCgroup(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = syscall.Rmdir(dir); err == nil || os.IsNotExist(err) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// strayNetns lists network namespaces containerd's CRI left in /run/netns
// (it names them cni-*), in case a run used that directory rather than
// RunDir (netns_mounts_under_state_dir).
func strayNetns() []string {
	names, _ := filepath.Glob("/run/netns/cni-*")
	return names
}

// removeStrayNetns unmounts and removes those namespaces.
func removeStrayNetns() error {
	for _, ns := range strayNetns() {
		_ = syscall.Unmount(ns, syscall.MNT_DETACH)
		if err := os.Remove(ns); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove network namespace %s: %w", ns, err)
		}
	}
	return nil
}
