package cluster

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestCloseInheritedOnExec: a descriptor inherited without close-on-exec
// (as flock hands its lock to the test) does not reach a started child.
func TestCloseInheritedOnExec(t *testing.T) {
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	closeInheritedOnExec()
	out, err := exec.Command("ls", "/proc/self/fd").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		if f == strconv.Itoa(fd) {
			t.Fatalf("child holds inherited descriptor %d (its descriptors: %s)", fd, strings.Join(strings.Fields(string(out)), " "))
		}
	}
}
