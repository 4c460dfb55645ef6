package smoke

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// hostSysctls are the /proc/sys settings kubelet, containerd and the CNI
// plugins would change on a host they ran on directly: kubelet's kernel
// tunables, the forwarding the bridge plugin turns on, and the bridge's
// netfilter settings (the whole dir, when the kernel has it).
func hostSysctls() []string {
	return []string{
		"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
		"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
		"net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv6/conf/all/forwarding",
		"net/bridge",
	}
}

// hostPaths are the fixed paths kubelet, containerd, runc and the CNI
// plugins use by default; the node keeps all of them in its own
// namespace or state dir, so none may appear (or change) on the host.
// Of /run/containerd only containerd's own socket and task state count:
// a containerd run elsewhere with its state in a dir of its own (the
// images tool's tests) still has its shims' sockets in /run/containerd/s.
func hostPaths() []string {
	return []string{
		"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/cni", "/var/log/pods", "/var/log/containers",
		"/run/containerd/containerd.sock", "/run/containerd/io.containerd.runtime.v2.task",
		"/run/runc", "/run/netns", "/var/run/netns", "/opt/containerd", "/etc/cni", "/etc/kubernetes",
		"/usr/libexec/kubernetes",
	}
}

// hostState records, as lines of "what: value", every setting of the host
// that running a real node could change: the sysctls, the iptables rules,
// the links and addresses, the mount points, the cgroups (two levels
// deep in each hierarchy) and the default paths.
func hostState(t *testing.T) []string {
	t.Helper()
	var state []string
	add := func(what string, lines ...string) {
		for _, l := range lines {
			state = append(state, what+": "+l)
		}
	}
	for _, name := range hostSysctls() {
		_ = filepath.WalkDir(filepath.Join("/proc/sys", name), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil // absent on this kernel: nothing to compare
			}
			if v, err := os.ReadFile(path); err == nil {
				add("sysctl", strings.TrimPrefix(path, "/proc/sys/")+"="+strings.TrimSpace(string(v)))
			}
			return nil
		})
	}
	// iptables-save's packet and byte counters change with traffic.
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		out, err := exec.Command(tool).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", tool, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") { // comments carry the time
				add(tool, counters.ReplaceAllString(l, "[]"))
			}
		}
	}
	for _, args := range [][]string{{"-o", "link"}, {"-o", "addr"}, {"route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		add("ip "+strings.Join(args, " "), strings.Split(strings.TrimSpace(string(out)), "\n")...)
	}
	add("mount", mountPoints(t)...)
	add("cgroup", cgroupDirs(t)...)
	for _, p := range hostPaths() {
		entries, err := os.ReadDir(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			add("path", p+" absent")
		case err != nil:
			add("path", p+" "+err.Error())
		default:
			names := make([]string, 0, len(entries))
			for _, e := range entries {
				names = append(names, e.Name())
			}
			add("path", fmt.Sprintf("%s %v", p, names))
		}
	}
	return state
}

// mountPoints returns the mount points of this process's mount
// namespace, the host's.
func mountPoints(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var points []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			points = append(points, f[4])
		}
	}
	slices.Sort(points)
	return points
}

// cgroupDirs returns the cgroups one and two levels below the root of
// each hierarchy under /sys/fs/cgroup: where the node's would be.
func cgroupDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, pattern := range []string{"/sys/fs/cgroup/*", "/sys/fs/cgroup/*/*", "/sys/fs/cgroup/*/*/*"} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.IsDir() {
				dirs = append(dirs, m)
			}
		}
	}
	slices.Sort(dirs)
	return dirs
}

// diffStates returns the lines only in before (-) and only in after (+),
// but for those about another cluster's real node (its link, address,
// route or cgroup, named by its id, not ownID): other localclusters may
// run on a developer's machine meanwhile.
func diffStates(before, after []string, ownID string) []string {
	names := regexp.MustCompile(`(rrnode|localcluster)-([0-9a-f]{8})`)
	others := func(l string) bool {
		for _, m := range names.FindAllStringSubmatch(l, -1) {
			if m[2] != ownID {
				return true
			}
		}
		return false
	}
	var diff []string
	for _, l := range before {
		if !slices.Contains(after, l) && !others(l) {
			diff = append(diff, "- "+l)
		}
	}
	for _, l := range after {
		if !slices.Contains(before, l) && !others(l) {
			diff = append(diff, "+ "+l)
		}
	}
	return diff
}

// realNodeID is the id in the names of the real node of the cluster
// with this state dir (localcluster's nodeLayout): the first 4 bytes of
// the state dir's SHA-256, in hex.
func realNodeID(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return hex.EncodeToString(sum[:4])
}

// TestHostState checks that the snapshot TestRealNode compares holds each
// kind of setting, so that an empty one cannot pass for an unchanged one.
func TestHostState(t *testing.T) {
	state := hostState(t)
	for _, want := range []string{
		"sysctl: vm/overcommit_memory=", "sysctl: net/ipv4/ip_forward=", "ip -o link: 1: lo:", "ip -o addr: 1: lo",
		"mount: /proc", "cgroup: /sys/fs/cgroup/", "path: /var/lib/kubelet",
	} {
		found := false
		for _, l := range state {
			found = found || strings.HasPrefix(l, want)
		}
		if !found {
			t.Errorf("host state has no line starting with %q", want)
		}
	}
	if diff := diffStates(state, append(state[1:], "new: line"), "00000000"); len(diff) != 2 {
		t.Errorf("diffStates of one line gone and one new = %q", diff)
	}
	others := []string{"cgroup: /sys/fs/cgroup/pids/localcluster-0123abcd", "ip -o link: 9: rrnode-0123abcd@if2: <UP>"}
	if diff := diffStates(nil, others, "00000000"); len(diff) != 0 {
		t.Errorf("diffStates of another cluster's node = %q, want none", diff)
	}
	if diff := diffStates(nil, others, "0123abcd"); len(diff) != 2 {
		t.Errorf("diffStates of its own node = %q, want both lines", diff)
	}
}
