package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startPostgres creates a fresh PostgreSQL cluster owned by the postgres
// user, with PostgresUser as its superuser, and starts it on the node
// address, where the selector-less Service postgres points.
func (c Config) startPostgres(ctx context.Context) error {
	if !c.Servers {
		return nil
	}
	p, err := c.postgres()
	if err != nil {
		return err
	}
	if err := c.initPostgres(ctx, p.credential); err != nil {
		return err
	}
	if err := c.start(p); err != nil {
		return err
	}
	return poll(ctx, "postgres", 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		out, err := exec.CommandContext(ctx, postgresBinDir+"/pg_isready", "-q", "-h", c.NodeIP,
			"-p", strconv.Itoa(c.PostgresPort)).CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("pg_isready: %v: %s", err, out)
		}
		return true, nil
	})
}

func (c Config) initPostgres(ctx context.Context, cred *syscall.Credential) error {
	dir := c.state("postgres")
	for _, d := range []string{dir, dir + "/run"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	pwfile := dir + "/pwfile"
	if err := os.WriteFile(pwfile, []byte(PostgresPassword+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, postgresBinDir+"/initdb", "-D", dir+"/data", "-U", PostgresUser,
		"--pwfile", pwfile, "--auth", "scram-sha-256", "--no-sync", "--no-instructions")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return os.Remove(pwfile)
}
