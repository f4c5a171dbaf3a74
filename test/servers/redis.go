package servers

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a real Redis server (Debian's redis-server) on loopback, with a
// password, its data in Dir/dump.rdb.
type Redis struct {
	// Addr is host:port, e.g. 127.0.0.1:40123; Host and Port are its parts.
	Addr, Host, Port string
	// Password of the default user.
	Password string
	// Dir holds the server's data (dump.rdb) and log.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// redisStartLimit bounds the wait for PING; redis-server is up in
// milliseconds unless the machine is loaded.
const redisStartLimit = 60 * time.Second

// StartRedis starts redis-server with its data in a new temporary
// directory and waits until it answers PING. It is stopped when the test
// ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisIn(t, t.TempDir(), "")
}

// StartRedisIn starts redis-server on dir, loading dir/dump.rdb if there is
// one (a restored backup), with password, or a new one when empty.
func StartRedisIn(t testing.TB, dir, password string) *Redis {
	t.Helper()
	SkipIfShort(t, "Redis")
	if password == "" {
		var secret [12]byte
		if _, err := rand.Read(secret[:]); err != nil {
			t.Fatal(err)
		}
		password = hex.EncodeToString(secret[:])
	}
	addr := freeLoopbackAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	s := &Redis{Addr: addr, Host: host, Port: port, Password: password, Dir: dir, exited: make(chan struct{})}
	s.start(t)
	t.Cleanup(s.Stop)
	if err := s.waitReady(redisStartLimit); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		t.Fatalf("redis-server: %v\n%s", err, log)
	}
	return s
}

func (s *Redis) start(t testing.TB) {
	t.Helper()
	// The password goes through a config on stdin, never through args.
	conf := fmt.Sprintf("bind %s\nport %s\ndir %s\ndbfilename dump.rdb\nlogfile %s\nrequirepass %s\n"+
		"save \"\"\nappendonly no\ndaemonize no\nenable-debug-command local\nprotected-mode yes\n",
		s.Host, s.Port, s.Dir, filepath.Join(s.Dir, "redis.log"), s.Password)
	s.cmd = exec.Command(Bin(t, "redis-server"), "-")
	s.cmd.Stdin = strings.NewReader(conf)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
}

// waitReady sends PING until the server answers PONG, failing at once if
// it exits.
func (s *Redis) waitReady(limit time.Duration) error {
	deadline := time.After(limit)
	for {
		if reply, err := s.Do("PING"); err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before answering PING: %v", s.cmd.ProcessState)
		case <-deadline:
			return fmt.Errorf("no PONG from %s within %s", s.Addr, limit)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Do runs one command (after AUTH) and returns its reply as text: a status
// or bulk string, an integer, or an error. Arrays are not supported.
func (s *Redis) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := conn.Write(resp("AUTH", s.Password)); err != nil {
		return "", err
	}
	if _, err := readReply(r); err != nil {
		return "", fmt.Errorf("AUTH: %w", err)
	}
	if _, err := conn.Write(resp(args...)); err != nil {
		return "", err
	}
	return readReply(r)
}

// MustDo is Do for tests.
func (s *Redis) MustDo(t testing.TB, args ...string) string {
	t.Helper()
	reply, err := s.Do(args...)
	if err != nil {
		t.Fatalf("redis %s: %v", args[0], err)
	}
	return reply
}

func resp(args ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return []byte(b.String())
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case line == "":
		return "", fmt.Errorf("empty reply")
	case line[0] == '+' || line[0] == ':':
		return line[1:], nil
	case line[0] == '-':
		return "", fmt.Errorf("%s", line[1:])
	case line == "$-1":
		return "", nil
	case line[0] == '$':
		var n int
		if _, err := fmt.Sscanf(line, "$%d", &n); err != nil {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unsupported reply %q", line)
}

// Stop stops redis-server (SIGTERM, then SIGKILL after 10 s) without
// saving, and waits for it to exit. It is safe to call more than once.
func (s *Redis) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}
