package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// drainTimeout bounds the drain of the real node at teardown.
	drainTimeout = 15 * time.Second
	// nodeCleanupTimeout bounds the removal of the node's cgroups and
	// link once its processes are gone.
	nodeCleanupTimeout = 10 * time.Second
)

// realNode is the real node localcluster runs: its sandbox (a component)
// and what localcluster set up on the host for it.
type realNode struct {
	layout  *nodeLayout
	mounts  []string // the cgroup hierarchies
	ip      string   // iproute2's ip
	sandbox *component
	proxy   *apiProxy
	log     *logger
}

// nodeTools are the programs the real node runs, found on this host.
type nodeTools struct {
	self, kubelet, containerd, ctr, runc, ip, cniBin string
}

// sandboxSysProcAttr starts the node sandbox as the first process of new
// mount, network and PID namespaces. When it exits, the kernel kills
// every process left in its PID namespace (containerd's shims, the
// containers), and the namespaces, with the mounts, the bridge, the
// addresses and the sysctls of the node, go with them. Pdeathsig kills it
// when localcluster dies without tearing down.
func sandboxSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWPID,
	}
}

// findNodeTools checks that this host can run the real node and finds
// what it needs. Its error is the one-line reason it cannot.
func findNodeTools(binDir, stateDir, imagesDir string) (*nodeTools, []string, error) {
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("not root (containerd, kubelet and the namespaces they run in need it)")
	}
	for _, shadowed := range []string{"/run", "/var/run", "/var/lib", "/var/log", "/proc"} {
		if stateDir == shadowed || strings.HasPrefix(stateDir, shadowed+"/") {
			return nil, nil, fmt.Errorf("the state dir %s is under %s, which the node replaces with its own", stateDir, shadowed)
		}
	}
	t := &nodeTools{kubelet: filepath.Join(binDir, "kubelet")}
	if _, err := os.Stat(t.kubelet); err != nil {
		return nil, nil, fmt.Errorf("kubelet not in %s (build it with WITH_NODES=1 hack/build-control-plane.sh)", binDir)
	}
	var err error
	if t.self, err = os.Executable(); err != nil {
		return nil, nil, err
	}
	for _, prog := range []struct {
		name string
		path *string
	}{{"containerd", &t.containerd}, {"containerd-shim-runc-v2", nil}, {"ctr", &t.ctr}, {"runc", &t.runc}, {"ip", &t.ip}} {
		p, err := lookPath(prog.name)
		if err != nil {
			return nil, nil, fmt.Errorf("%s not found (hack/install-node-deps.sh installs it)", prog.name)
		}
		if prog.path != nil {
			*prog.path = p
		}
	}
	if t.cniBin, err = findCNI(); err != nil {
		return nil, nil, err
	}
	images, err := imageArchives(imagesDir)
	if err != nil {
		return nil, nil, err
	}
	mounts, err := cgroupMounts()
	if err != nil || len(mounts) == 0 {
		return nil, nil, fmt.Errorf("no cgroup hierarchy is mounted read-write (%v)", err)
	}
	if out, err := probeNamespaces(t.self); err != nil {
		return nil, nil, fmt.Errorf("cannot create the node's namespaces: %v%s", err, out)
	}
	return t, images, nil
}

// lookPath finds a program on PATH or in the sbin dirs, which a non-login
// root shell may not have on PATH.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// findCNI returns the first dir with the CNI plugins the node uses:
// Debian's, else the upstream default.
func findCNI() (string, error) {
	dirs := []string{"/usr/lib/cni", "/opt/cni/bin"}
	for _, dir := range dirs {
		ok := true
		for _, plugin := range []string{"bridge", "host-local", "loopback"} {
			if _, err := os.Stat(filepath.Join(dir, plugin)); err != nil {
				ok = false
			}
		}
		if ok {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no CNI bridge, host-local and loopback plugins in %s (hack/install-node-deps.sh installs them)", strings.Join(dirs, " or "))
}

// imageArchives returns the *.tar files of dir: the node's images. No
// registry is reachable, so without them no pod can start.
func imageArchives(dir string) ([]string, error) {
	if dir == "" {
		return nil, fmt.Errorf("no --images dir: the node would have no sandbox image (%s)", sandboxImage)
	}
	images, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err == nil && len(images) == 0 {
		err = fmt.Errorf("no *.tar in --images %s: the node would have no sandbox image (%s)", dir, sandboxImage)
	}
	return images, err
}

// probeNamespaces starts the sandbox in its probe mode, which sets up
// its namespaces and mounts and exits, and returns its output on failure.
func probeNamespaces(self string) (string, error) {
	cmd := exec.Command(self, sandboxArg, "--probe")
	cmd.SysProcAttr = sandboxSysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil && len(out) > 0 {
		return ": " + oneLine(string(out)), err
	}
	return "", err
}

// hostPrefixFree reports whether no address of the host is in p.
func hostPrefixFree(p netip.Prefix) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok {
			if addr, ok := netip.AddrFromSlice(ipnet.IP); ok && p.Contains(addr.Unmap()) {
				return false
			}
		}
	}
	return true
}

// startRealNode starts the real node: it checks the host, removes what a
// crashed run in this state dir left, writes the node's configs, starts
// its sandbox, joins it to the host and waits until kubelet has
// registered the Node and it is Ready. An *errNodeUnavailable says why
// the node could not start; the caller then goes on without it, after
// c.abandonNode. Other errors (a signal, a component's death) end the
// startup as they would anyway.
func (c *cluster) startRealNode(deadline time.Time, sigs <-chan os.Signal) error {
	began := time.Now()
	tools, images, err := findNodeTools(c.binDir, c.stateDir, c.imagesDir)
	if err != nil {
		return &errNodeUnavailable{err.Error()}
	}
	layout, err := newNodeLayout(c.stateDir, hostPrefixFree)
	if err != nil {
		return &errNodeUnavailable{err.Error()}
	}
	mounts, _ := cgroupMounts()
	n := &realNode{layout: layout, mounts: mounts, ip: tools.ip, log: c.log}
	c.node = n
	if err := n.removeLeftovers(); err != nil {
		return &errNodeUnavailable{"removing what an earlier run left: " + err.Error()}
	}
	if stale := removeStaleCgroups(mounts, "localcluster-", layout.cgroup, time.Minute); len(stale) > 0 {
		c.log.printf("removed the empty cgroups of killed localclusters: %s", strings.Join(stale, " "))
	}
	cfgPath, err := n.prepare(c, tools, images)
	if err != nil {
		return &errNodeUnavailable{err.Error()}
	}
	path := "PATH=" + filepath.Dir(tools.containerd) + ":" + filepath.Dir(tools.runc) + ":" + os.Getenv("PATH")
	if n.sandbox, err = c.spawn("node-sandbox", tools.self, []string{path}, []string{sandboxArg, cfgPath}, sandboxSysProcAttr(), false); err != nil {
		return &errNodeUnavailable{err.Error()}
	}
	c.comps = append(c.comps, n.sandbox)
	if err := n.connect(c.server); err != nil {
		return &errNodeUnavailable{err.Error()}
	}
	if err := c.waitNodeReady(deadline, sigs); err != nil {
		return err
	}
	// From now on its death ends the cluster, as any component's does.
	go func() {
		<-n.sandbox.done
		if !n.sandbox.replaced.Load() {
			c.died <- n.sandbox
		}
	}()
	c.log.printf("real node %s ready in %s (InternalIP %s)", realNodeName, since(began), layout.nodeAddr.Addr())
	return nil
}

// prepare writes the node's configs and credentials into its dir and
// creates its cgroups. It returns the sandbox's config file.
func (n *realNode) prepare(c *cluster, tools *nodeTools, images []string) (string, error) {
	l := n.layout
	if err := os.RemoveAll(l.dir); err != nil {
		return "", err
	}
	for _, d := range []string{"containerd", "opt", "cni", "cni-ipam", "pod-logs", "kubelet", "var-lib", "var-log", "sysctl"} {
		if err := os.MkdirAll(l.path(d), 0o755); err != nil {
			return "", err
		}
	}
	kubeletCfg, err := l.kubeletConfig(c.pki.path("ca.crt"), c.withNodes)
	if err != nil {
		return "", err
	}
	cni, err := l.cniConfig()
	if err != nil {
		return "", err
	}
	cert, err := c.pki.ca.issue(clientTemplate("system:node:"+realNodeName, "system:nodes"))
	if err != nil {
		return "", err
	}
	server := "https://" + net.JoinHostPort(apiServiceIP, "443")
	cfg := n.sandboxConfig(c.stateDir, tools, images)
	sandboxCfg, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", err
	}
	for name, data := range map[string][]byte{
		"containerd.toml":              []byte(l.containerdConfig(tools.runc, tools.cniBin)),
		"cni/10-localcluster.conflist": cni,
		"kubelet.json":                 kubeletCfg,
		"kubelet.kubeconfig":           kubeconfig(server, c.pki.ca, cert, "system:node:"+realNodeName),
		"sandbox.json":                 sandboxCfg,
	} {
		if err := os.WriteFile(l.path(name), data, 0o600); err != nil {
			return "", err
		}
	}
	if err := createCgroup(n.mounts, filepath.Join(l.cgroup, "node")); err != nil {
		return "", fmt.Errorf("creating the node's cgroup: %w", err)
	}
	return l.path("sandbox.json"), nil
}

// sandboxConfig returns what the sandbox is told: where the node's files
// are, the command lines of containerd and kubelet, the images.
func (n *realNode) sandboxConfig(stateDir string, tools *nodeTools, images []string) sandboxConfig {
	l := n.layout
	cfg := sandboxConfig{
		Sysctls: kubeletSysctls(), SysctlDir: l.path("sysctl"),
		VarLib: l.path("var-lib"), VarLog: l.path("var-log"),
		IP: tools.ip, NodeAddr: l.nodeAddr.String(), ServiceIP: apiServiceIP,
		Containerd: []string{tools.containerd, "--config", l.path("containerd.toml")},
		Kubelet: []string{
			tools.kubelet,
			"--config=" + l.path("kubelet.json"),
			"--kubeconfig=" + l.path("kubelet.kubeconfig"),
			"--root-dir=" + l.path("kubelet"),
			"--hostname-override=" + realNodeName,
			"--node-ip=" + l.nodeAddr.Addr().String(),
			"--node-labels=" + realNodeLabel + "=" + realNodeValue,
			"--v=2",
		},
		ContainerdLog: filepath.Join(stateDir, "containerd.log"),
		KubeletLog:    filepath.Join(stateDir, "kubelet.log"),
		Ctr:           tools.ctr,
		Images:        images,
	}
	for _, m := range n.mounts {
		cfg.Cgroups = append(cfg.Cgroups, filepath.Join(m, l.cgroup, "node"))
	}
	return cfg
}

// connect joins the sandbox's network namespace to the host: a veth pair
// whose node end becomes the sandbox's eth0 (kube-apiserver reaches
// kubelet there, and the pods through it), and the proxy to kube-apiserver
// on the "kubernetes" Service IP inside it.
func (n *realNode) connect(server string) error {
	l, pid := n.layout, n.sandbox.cmd.Process.Pid
	for _, args := range [][]string{
		{"link", "add", l.link, "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(pid)},
		{"addr", "add", l.hostAddr.String(), "dev", l.link},
		{"link", "set", l.link, "up"},
		// The pods' addresses through the node, for kube-apiserver's pod
		// proxy (/api/v1/namespaces/NS/pods/NAME:PORT/proxy/...). The route
		// goes with the link, which teardown deletes.
		{"route", "add", podCIDR, "via", l.nodeAddr.Addr().String(), "dev", l.link},
	} {
		if out, err := exec.Command(n.ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, oneLine(string(out)))
		}
	}
	u, err := url.Parse(server)
	if err != nil {
		return err
	}
	ln, err := listenInNetns(fmt.Sprintf("/proc/%d/ns/net", pid), net.JoinHostPort(apiServiceIP, "443"))
	if err != nil {
		return fmt.Errorf("listening on %s:443 in the node: %w", apiServiceIP, err)
	}
	n.proxy = newAPIProxy(ln, u.Host)
	return nil
}

// waitNodeReady waits until the real node is Ready, its sandbox exits
// (the node is unavailable: its last line says why), a signal arrives or
// a component dies.
func (c *cluster) waitNodeReady(deadline time.Time, sigs <-chan os.Signal) error {
	n := c.node
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		body, err := get(ctx, c.client, c.server+"/api/v1/nodes/"+realNodeName)
		cancel()
		if err == nil {
			err = nodeSchedulable([]byte(body), realNodeLabel)
		}
		if err == nil {
			return nil
		}
		last = err
		select {
		case sig := <-sigs:
			return &errStartup{sig: sig}
		case comp := <-c.died:
			return &errStartup{died: comp}
		case <-n.sandbox.done:
			return &errNodeUnavailable{n.failure()}
		case <-timeout.C:
			return &errNodeUnavailable{fmt.Sprintf("node %s not Ready before the startup deadline: %v (see kubelet.log)", realNodeName, last)}
		case <-tick.C:
		}
	}
}

// failure returns why the sandbox exited: its last line when it is one of
// its failures, else its exit status.
func (n *realNode) failure() string {
	data, _ := os.ReadFile(n.sandbox.logPath)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if last := lines[len(lines)-1]; strings.HasPrefix(last, sandboxFailPrefix) {
		return strings.TrimPrefix(last, sandboxFailPrefix)
	}
	return fmt.Sprintf("the node sandbox exited: %v (see %s)", n.sandbox.err, n.sandbox.logPath)
}

// drain cordons the real node and deletes its pods, and waits, up to
// drainTimeout, until kubelet has stopped them: their containers, their
// cgroups, their addresses (CNI DEL) go the orderly way before the node
// does. With kube-apiserver gone it gives up at the first request.
func (n *realNode) drain(c *cluster) {
	if n == nil || n.sandbox == nil || n.sandbox.exited() {
		return
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	nodeURL := c.server + "/api/v1/nodes/" + realNodeName
	if _, err := send(ctx, c.client, "PATCH", nodeURL, "application/merge-patch+json", []byte(`{"spec":{"unschedulable":true}}`)); err != nil {
		n.log.printf("not draining %s: %v", realNodeName, err)
		return
	}
	podsURL := c.server + "/api/v1/pods?fieldSelector=" + url.QueryEscape("spec.nodeName="+realNodeName)
	deleted := map[string]bool{}
	for {
		pods, err := listPods(ctx, c, podsURL)
		if err == nil && len(pods) == 0 {
			n.log.printf("real node drained in %s (%d pods)", since(began), len(deleted))
			return
		}
		for _, p := range pods {
			if !deleted[p] {
				deleted[p] = true
				_, _ = send(ctx, c.client, "DELETE", c.server+p, "application/json", []byte(`{"gracePeriodSeconds":1}`))
			}
		}
		select {
		case <-ctx.Done():
			n.log.printf("%d pods still on %s after %s: stopping it anyway", len(pods), realNodeName, drainTimeout)
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// listPods returns the API paths of the pods that url lists.
func listPods(ctx context.Context, c *cluster, url string) ([]string, error) {
	body, err := get(ctx, c.client, url)
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct{ Namespace, Name string } `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(list.Items))
	for _, p := range list.Items {
		paths = append(paths, "/api/v1/namespaces/"+p.Metadata.Namespace+"/pods/"+p.Metadata.Name)
	}
	return paths, nil
}

// abandonNode stops a node that could not start and removes what it set
// up, so that the cluster goes on without it.
func (c *cluster) abandonNode() {
	n := c.node
	if n == nil {
		return
	}
	if n.sandbox != nil {
		_ = kill(n.sandbox)
		if i := c.componentIndex(n.sandbox.name); i >= 0 {
			c.comps = append(c.comps[:i], c.comps[i+1:]...)
		}
	}
	n.cleanup()
	c.node = nil
}

// cleanup removes, once the sandbox has exited, what the node left on the
// host: the proxy's sockets (which hold its network namespace), the host
// end of the veth pair, its cgroups.
func (n *realNode) cleanup() {
	if n == nil {
		return
	}
	if n.proxy != nil {
		n.proxy.close()
	}
	if err := n.removeLeftovers(); err != nil {
		n.log.printf("real node: %v", err)
	}
}

// removeLeftovers removes the host end of the node's veth pair (and so
// both ends) and its cgroups, killing any process still in them: after a
// crash of localcluster, or at teardown.
func (n *realNode) removeLeftovers() error {
	deadline := time.Now().Add(nodeCleanupTimeout)
	for {
		if _, err := net.InterfaceByName(n.layout.link); err != nil {
			break // gone (or never there)
		}
		_ = exec.Command(n.ip, "link", "del", n.layout.link).Run()
		if time.Now().After(deadline) {
			return fmt.Errorf("link %s is still there", n.layout.link)
		}
		time.Sleep(50 * time.Millisecond) // polled: its namespace may be on its way out
	}
	return removeCgroup(n.mounts, n.layout.cgroup, deadline)
}
