// Command keepsake-cluster starts and stops Keepsake's local single-node
// Kubernetes cluster (see package test/cluster).
//
//	keepsake-cluster up [-no-servers]   start (or keep) the cluster; prints time to Ready node
//	keepsake-cluster down [-purge]      stop it and remove everything it holds on the machine
//	keepsake-cluster status [-v]        show what runs (-v: and what it holds); exit 1 when not up
//	keepsake-cluster images -keepsake PATH [-restic PATH]
//	                                    (re)build and import the keepsake image
//
// The admin kubeconfig is /var/lib/keepsake-cluster/kubeconfig/admin.kubeconfig.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keepsake-dev/keepsake/test/cluster"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: keepsake-cluster up|down|status|images [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "keepsake-cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, command string, args []string) error {
	cfg, err := cluster.DefaultConfig()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet(command, flag.ExitOnError)
	noServers := fs.Bool("no-servers", false, "up: skip the test servers (MinIO, InfluxDB, PostgreSQL)")
	purge := fs.Bool("purge", false, "down: also remove the state directory (logs, image cache)")
	timeout := fs.Duration("timeout", 10*time.Minute, "up: give up after this long")
	keepsake := fs.String("keepsake", "", "images: keepsake binary for keepsake.local/keepsake:dev")
	restic := fs.String("restic", "", "images: restic binary to add to the keepsake image")
	verbose := fs.Bool("v", false, "status: also list what the cluster holds on the machine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Servers = !*noServers
	switch command {
	case "up":
		return up(ctx, cfg, *timeout)
	case "down":
		return cfg.Down(ctx, os.Stdout, *purge)
	case "status":
		if !cfg.Status(ctx, os.Stdout, *verbose) {
			os.Exit(1)
		}
		return nil
	case "images":
		return images(ctx, cfg, *keepsake, *restic)
	}
	return fmt.Errorf("unknown command %q", command)
}

func up(ctx context.Context, cfg cluster.Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t, err := cfg.Up(ctx, os.Stdout)
	if err != nil {
		return err
	}
	if t.AlreadyUp {
		fmt.Println("cluster already up")
	} else {
		fmt.Printf("node Ready in %s; add-ons and test servers ready in %s\n",
			t.NodeReady.Round(time.Millisecond), t.AllReady.Round(time.Millisecond))
	}
	fmt.Printf("export KUBECONFIG=%s\n", cfg.AdminKubeconfig())
	return nil
}

func images(ctx context.Context, cfg cluster.Config, keepsake, restic string) error {
	if keepsake == "" {
		return fmt.Errorf("images: -keepsake is required")
	}
	src := map[string]string{"keepsake": keepsake}
	if restic != "" {
		src["restic"] = restic
	}
	return cfg.ImportImages(ctx, src)
}
