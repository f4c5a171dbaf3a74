package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// guardChain drops anything forwarded between the cluster's bridge and any
// other interface, so pod and Service addresses never leave the machine even
// though IP forwarding is on (kube-proxy needs it to route ClusterIPs).
const guardChain = "KEEPSAKE-GUARD"

// ownedChainPrefixes name the iptables chains the cluster's parts create:
// kube-proxy and the kubelet (KUBE-), the CNI plugins (CNI-) and Up itself.
var ownedChainPrefixes = []string{"KUBE-", "CNI-", "KEEPSAKE-"}

// tunedSysctls are the kernel settings Up, the kubelet (its kernel tunables)
// and kube-proxy may change; Up records them first and Down puts them back.
var tunedSysctls = []string{
	"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
	"net/ipv4/conf/all/route_localnet", "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
	"kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"net/netfilter/nf_conntrack_max",
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// setUpNetwork creates the bridge with the node address, turns on IP
// forwarding behind the guard chain, and records the sysctls it changes.
func (c Config) setUpNetwork() error {
	if err := c.saveSysctls(); err != nil {
		return err
	}
	if _, err := run("ip", "link", "add", c.Bridge, "type", "bridge"); err != nil {
		return err
	}
	prefix := strings.SplitN(c.PodCIDR, "/", 2)[1]
	if _, err := run("ip", "addr", "add", c.NodeIP+"/"+prefix, "dev", c.Bridge); err != nil {
		return err
	}
	if _, err := run("ip", "link", "set", c.Bridge, "up"); err != nil {
		return err
	}
	if err := c.addGuard(); err != nil {
		return err
	}
	for key, value := range map[string]string{"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"} {
		if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
	}
	return nil
}

func (c Config) addGuard() error {
	rules := [][]string{
		{"-N", guardChain},
		{"-A", guardChain, "-i", c.Bridge, "!", "-o", c.Bridge, "-j", "DROP"},
		{"-A", guardChain, "!", "-i", c.Bridge, "-o", c.Bridge, "-j", "DROP"},
		{"-I", "FORWARD", "1", "-j", guardChain},
	}
	for _, r := range rules {
		if _, err := run("iptables", append([]string{"-w", "-t", "filter"}, r...)...); err != nil {
			return err
		}
	}
	return nil
}

// saveSysctls records the current values unless a killed run already did:
// then the file holds the values from before that run, which are the ones
// to restore.
func (c Config) saveSysctls() error {
	path := c.state("sysctl.orig")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	var b strings.Builder
	for _, key := range tunedSysctls {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", key)); err == nil {
			fmt.Fprintf(&b, "%s %s\n", key, strings.TrimSpace(string(v)))
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// restoreSysctls puts back what saveSysctls recorded.
func (c Config) restoreSysctls() error {
	path := c.state("sysctl.orig")
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		key, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		cur, _ := os.ReadFile(filepath.Join("/proc/sys", key))
		if strings.TrimSpace(string(cur)) != value {
			if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
				return fmt.Errorf("restore %s: %w", key, err)
			}
		}
	}
	return os.Remove(path)
}

// iptablesTables are the tables the cluster's chains live in.
var iptablesTables = []string{"filter", "nat", "mangle", "raw"}

// ownedChains lists the chains of ours in every table, for iptables and
// ip6tables, as "iptables/nat/KUBE-SERVICES".
func ownedChains() []string {
	var out []string
	for _, cmd := range []string{"iptables", "ip6tables"} {
		for _, table := range iptablesTables {
			rules, err := run(cmd, "-w", "-t", table, "-S")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(rules, "\n") {
				if chain, ok := strings.CutPrefix(line, "-N "); ok && owned(chain) {
					out = append(out, cmd+"/"+table+"/"+chain)
				}
			}
		}
	}
	return out
}

func owned(chain string) bool {
	for _, p := range ownedChainPrefixes {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

// removeChains deletes every rule that jumps to a chain of ours, then the
// chains themselves, in each table of iptables and ip6tables.
func removeChains() error {
	var errs []string
	for _, cmd := range []string{"iptables", "ip6tables"} {
		for _, table := range iptablesTables {
			if err := removeChainsIn(cmd, table); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove iptables chains: %s", strings.Join(errs, "; "))
	}
	return nil
}

func removeChainsIn(cmd, table string) error {
	rules, err := run(cmd, "-w", "-t", table, "-S")
	if err != nil {
		return nil // table not present in this kernel
	}
	var ours, others []string
	for _, line := range strings.Split(rules, "\n") {
		chain, ok := strings.CutPrefix(line, "-N ")
		switch {
		case ok && owned(chain):
			ours = append(ours, chain)
		case ok:
			others = append(others, chain)
		case strings.HasPrefix(line, "-P "):
			others = append(others, strings.Fields(line)[1])
		}
	}
	if len(ours) == 0 {
		return nil
	}
	for _, chain := range others {
		if err := deleteJumps(cmd, table, chain); err != nil {
			return err
		}
	}
	for _, chain := range ours {
		if _, err := run(cmd, "-w", "-t", table, "-F", chain); err != nil {
			return err
		}
	}
	for _, chain := range ours {
		if _, err := run(cmd, "-w", "-t", table, "-X", chain); err != nil {
			return err
		}
	}
	return nil
}

// deleteJumps deletes, by rule number from the last, the rules of chain
// that jump or go to a chain of ours.
func deleteJumps(cmd, table, chain string) error {
	rules, err := run(cmd, "-w", "-t", table, "-S", chain)
	if err != nil {
		return err
	}
	var numbers []int
	n := 0
	for _, line := range strings.Split(rules, "\n") {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		n++
		fields := strings.Fields(line)
		for i := 0; i+1 < len(fields); i++ {
			if (fields[i] == "-j" || fields[i] == "-g") && owned(fields[i+1]) {
				numbers = append(numbers, n)
				break
			}
		}
	}
	for i := len(numbers) - 1; i >= 0; i-- {
		if _, err := run(cmd, "-w", "-t", table, "-D", chain, fmt.Sprint(numbers[i])); err != nil {
			return err
		}
	}
	return nil
}

// ownedLinks lists the bridge and any veth still attached to it or left
// without a peer by a killed run (the bridge plugin names them veth*).
func (c Config) ownedLinks() []string {
	out, err := run("ip", "-o", "link", "show")
	if err != nil {
		return nil
	}
	var links []string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name := strings.SplitN(strings.TrimSuffix(fields[1], ":"), "@", 2)[0]
		if name == c.Bridge || strings.Contains(line, " master "+c.Bridge+" ") {
			links = append(links, name)
		}
	}
	return links
}

// removeLinks deletes the bridge and the veths on it.
func (c Config) removeLinks() error {
	for _, link := range c.ownedLinks() {
		if _, err := run("ip", "link", "delete", link); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			return err
		}
	}
	return nil
}
