package restic

import (
	"os"
	"syscall"
)

// pipeSize is the capacity asked for restic's stdin pipe: larger than the
// 64 KiB default, so that feeding restic takes fewer wake-ups.
const pipeSize = 1 << 20

// fSetPipeSz is F_SETPIPE_SZ from fcntl.h.
const fSetPipeSz = 1031

// growPipe enlarges a pipe's buffer; best effort (the kernel caps it at
// /proc/sys/fs/pipe-max-size for unprivileged processes). It goes through
// SyscallConn because Fd would switch the pipe to blocking mode.
func growPipe(f *os.File) {
	conn, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = conn.Control(func(fd uintptr) {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeSize)
	})
}
