package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's
// times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuWatch samples the CPU time (user + system) of the runtime process and
// of its driver child while they run. The rusage of the reaped runtime
// would not do: it includes its children, restic among them. The last
// sample before a process exits is its total up to then, short of at most
// one sampling interval (cpuSampleEvery) of CPU.
type cpuWatch struct {
	runtime, driver time.Duration
}

const cpuSampleEvery = 10 * time.Millisecond

// watchCPU fills w while the runtime (pid) and its child named driver run,
// until stop is called.
func watchCPU(w *cpuWatch, pid int, driver string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(cpuSampleEvery)
		defer tick.Stop()
		child := 0
		for {
			if t, ok := cpuTime(pid); ok {
				w.runtime = max(w.runtime, t)
			}
			if child == 0 {
				child = childNamed(pid, driver)
			}
			if t, ok := cpuTime(child); ok && child != 0 {
				w.driver = max(w.driver, t)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// cpuTime reads utime + stime of a live process (fields 14 and 15 of
// /proc/<pid>/stat, final once it is a zombie); false once it is reaped.
func cpuTime(pid int) (time.Duration, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// After "pid (comm) " the fields are: state(3) ppid(4) ... utime(14)
	// stime(15); comm may hold spaces, so count from its closing ')'.
	end := bytes.LastIndexByte(stat, ')')
	fields := bytes.Fields(stat[end+1:])
	if end < 0 || len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, true
}
