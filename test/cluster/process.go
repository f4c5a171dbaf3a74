package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one long-running part of the cluster, started detached from
// the caller (its own session) with its output in StateDir/logs/<name>.log.
type process struct {
	name string
	path string
	args []string
	env  []string
	// credential runs it as another user (PostgreSQL refuses root).
	credential *syscall.Credential
	// stopSignal asks it to shut down; SIGKILL follows after the grace time.
	stopSignal syscall.Signal
}

// pidRecord is what a PID file holds: the PID and the executable, so a PID
// reused by an unrelated process after a crash is never signalled.
type pidRecord struct {
	pid int
	exe string
}

func (c Config) pidFile(name string) string { return c.run("pids", name+".pid") }

// start launches p and records its PID. The child is reaped by a goroutine
// while this process lives and by init after it exits.
func (c Config) start(p process) error {
	if err := os.MkdirAll(c.state("logs"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(c.run("pids"), 0o755); err != nil {
		return err
	}
	log, err := os.OpenFile(c.state("logs", p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "==== %s %s %s\n", time.Now().Format(time.RFC3339), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: p.credential}
	closeInheritedOnExec()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	go cmd.Wait() //nolint:errcheck // reaps the child; exits are noticed by polling
	exe, _ := filepath.EvalSymlinks(p.path)
	record := fmt.Sprintf("%d %s\n", cmd.Process.Pid, exe)
	return os.WriteFile(c.pidFile(p.name), []byte(record), 0o644)
}

// closeInheritedOnExec marks every descriptor above stderr close-on-exec,
// so that the cluster's parts, which outlive the process starting them, do
// not keep what it inherited: `flock /work/e2e.lock go test ...` hands the
// test its lock as descriptor 3, and etcd, the kubelet and the rest would
// hold that lock for as long as the cluster runs, so no later test could
// take it. Go opens its own files close-on-exec already.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// running returns the recorded PID of a part if that process still lives.
func (c Config) running(name string) (int, bool) {
	rec, err := readPIDFile(c.pidFile(name))
	if err != nil {
		return 0, false
	}
	return rec.pid, alive(rec)
}

func readPIDFile(path string) (pidRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return pidRecord{}, err
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return pidRecord{}, fmt.Errorf("%s: malformed", path)
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return pidRecord{}, fmt.Errorf("%s: %w", path, err)
	}
	return pidRecord{pid: pid, exe: fields[1]}, nil
}

// alive reports whether the recorded process exists, is not a zombie, and
// still runs the recorded executable.
func alive(rec pidRecord) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", rec.pid))
	if err != nil {
		return false
	}
	if strings.TrimSuffix(exe, " (deleted)") != rec.exe {
		return false
	}
	return !zombie(rec.pid)
}

func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// stop signals the recorded process of a part, waits up to grace for it to
// exit, then kills it, and removes the PID file.
func (c Config) stop(name string, sig syscall.Signal, grace time.Duration) error {
	rec, err := readPIDFile(c.pidFile(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if alive(rec) {
		if err := terminate(rec, sig, grace); err != nil {
			return fmt.Errorf("stop %s (pid %d): %w", name, rec.pid, err)
		}
	}
	return os.Remove(c.pidFile(name))
}

func terminate(rec pidRecord, sig syscall.Signal, grace time.Duration) error {
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = syscall.Kill(rec.pid, sig)
	if waitGone(rec, grace) {
		return nil
	}
	_ = syscall.Kill(rec.pid, syscall.SIGKILL)
	if waitGone(rec, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("still running after SIGKILL")
}

func waitGone(rec pidRecord, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !alive(rec) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !alive(rec)
}

// processInfo is a process of this machine as /proc shows it.
type processInfo struct {
	pid     int
	exe     string
	cmdline string
}

// processes lists every process with its executable and command line.
func processes() []processInfo {
	entries, _ := os.ReadDir("/proc")
	var out []processInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(cmdline) == 0 || zombie(pid) {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		out = append(out, processInfo{pid: pid, exe: strings.TrimSuffix(exe, " (deleted)"),
			cmdline: strings.ReplaceAll(string(cmdline), "\x00", " ")})
	}
	return out
}

// strayProcesses lists processes of the cluster that no PID file names:
// containerd shims, which re-parent themselves, and any part left by a run
// whose PID files are gone. A process counts only if it runs one of the
// cluster's programs AND its command line refers to the state or run
// directories (every part is started with its configuration there): envtest
// runs the same kube-apiserver from ./bin for other tests, and a shell may
// be reading the cluster's logs.
func (c Config) strayProcesses() []processInfo {
	recorded := map[int]bool{}
	for _, name := range stopOrder {
		if pid, ok := c.running(name); ok {
			recorded[pid] = true
		}
	}
	var out []processInfo
	for _, p := range processes() {
		if recorded[p.pid] {
			continue
		}
		refers := strings.Contains(p.cmdline, c.StateDir+"/") || strings.Contains(p.cmdline, c.RunDir+"/")
		if refers && clusterPrograms[filepath.Base(p.exe)] {
			out = append(out, p)
		}
	}
	return out
}

// clusterPrograms are the programs the cluster's processes run.
var clusterPrograms = map[string]bool{
	"kube-apiserver": true, "kube-controller-manager": true, "kube-scheduler": true, "kubelet": true,
	"kube-proxy": true, "coredns": true, "etcd": true, "containerd": true, "containerd-shim-runc-v2": true,
	"postgres": true,
}
