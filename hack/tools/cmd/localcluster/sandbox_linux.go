package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Timeouts of the sandbox's own steps; localcluster's --timeout bounds
// them all from outside.
const (
	// linkWait bounds the wait for localcluster to move the node's end of
	// the veth pair in.
	linkWait = 10 * time.Second
	// containerdWait bounds the wait for containerd's socket.
	containerdWait = 30 * time.Second
	// kubeletStopWait and containerdStopWait are how long each gets after
	// SIGTERM; then the sandbox exits, and the kernel kills what is left
	// in its PID namespace.
	kubeletStopWait    = 3 * time.Second
	containerdStopWait = 2 * time.Second
)

// containerdSocket is containerd's socket, in the sandbox's private /run.
const containerdSocket = "/run/containerd/containerd.sock"

// sandboxFailPrefix starts the sandbox's last line when it fails, so that
// localcluster can give it as the reason the node is unavailable.
const sandboxFailPrefix = "node-sandbox: failed: "

// sandboxConfig is what localcluster tells the sandbox, as JSON in a file.
type sandboxConfig struct {
	// Cgroups are the cgroup dirs (one per hierarchy) the sandbox moves
	// itself into first, so that everything it starts is below them.
	Cgroups []string `json:"cgroups"`
	// Sysctls are the /proc/sys files to shadow with a copy in SysctlDir.
	Sysctls   []string `json:"sysctls"`
	SysctlDir string   `json:"sysctlDir"`
	// VarLib and VarLog are bind-mounted on /var/lib and /var/log, where
	// kubelet, containerd and the CNI plugins keep a few fixed paths
	// (/var/lib/cni, /var/log/containers).
	VarLib string `json:"varLib"`
	VarLog string `json:"varLog"`
	// IP is iproute2's ip; NodeAddr goes on eth0, ServiceIP on lo.
	IP        string `json:"ip"`
	NodeAddr  string `json:"nodeAddr"`
	ServiceIP string `json:"serviceIP"`
	// Containerd and Kubelet are command lines; their output goes to
	// ContainerdLog and KubeletLog.
	Containerd    []string `json:"containerd"`
	Kubelet       []string `json:"kubelet"`
	ContainerdLog string   `json:"containerdLog"`
	KubeletLog    string   `json:"kubeletLog"`
	// Ctr imports Images (archives) before kubelet starts.
	Ctr    string   `json:"ctr"`
	Images []string `json:"images"`
}

// runSandbox is the node sandbox's main: args are the config file, or
// --probe, which only checks that the namespaces can be set up. It
// returns the exit code; a failure is one line starting with
// sandboxFailPrefix.
func runSandbox(args []string) int {
	if len(args) == 1 && args[0] == "--probe" {
		if err := privateMounts(); err != nil {
			fmt.Fprintf(os.Stderr, "%v\n", err)
			return 1
		}
		return 0
	}
	if err := sandbox(args); err != nil {
		fmt.Fprintf(os.Stderr, "%s%s\n", sandboxFailPrefix, oneLine(err.Error()))
		return 1
	}
	return 0
}

// sandbox sets the namespaces up, starts containerd, imports the images,
// starts kubelet and supervises both until SIGTERM or until one exits.
func sandbox(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: localcluster %s CONFIG", sandboxArg)
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var cfg sandboxConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	// Taken before anything starts, so that a SIGTERM during startup
	// still stops what was started.
	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	for _, dir := range cfg.Cgroups {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte("0"), 0o644); err != nil {
			return fmt.Errorf("joining cgroup: %w", err)
		}
	}
	if err := privateMounts(); err != nil {
		return err
	}
	if err := shadowMounts(&cfg); err != nil {
		return err
	}
	if err := nodeNetwork(&cfg); err != nil {
		return err
	}
	sv := &supervisor{exits: make(chan childExit, 4), exited: map[string]bool{}}
	defer sv.stop()
	if err := sv.startContainerd(&cfg, stop); err != nil {
		return err
	}
	if err := importImages(&cfg); err != nil {
		return err
	}
	if err := sv.start("kubelet", cfg.Kubelet, cfg.KubeletLog); err != nil {
		return err
	}
	sv.startReaping()
	logf("containerd and kubelet running")
	select {
	case sig := <-stop:
		logf("got %s: stopping kubelet and containerd", sig)
		return nil
	case e := <-sv.exits:
		sv.exited[e.name] = true
		return fmt.Errorf("%s %s%s", e.name, describe(e.status), lastLogLine(sv.logs[e.name]))
	}
}

// describe says how a process ended.
func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "was killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ws.ExitStatus())
}

// logf prints one progress line of the sandbox to its log.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "node-sandbox: "+format+"\n", args...)
}

// privateMounts makes every mount of the sandbox's new mount namespace
// private, so that nothing mounted below reaches the host (a shared mount
// would propagate there), and mounts a /proc of its PID namespace.
func privateMounts() error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	return nil
}

// shadowMounts gives the sandbox its own copies of what kubelet and
// containerd would change on the host: each sysctl file kubelet writes
// (a file holding the host's value, bind-mounted over it), /run (a
// tmpfs), /var/lib and /var/log (dirs of the node).
func shadowMounts(cfg *sandboxConfig) error {
	for _, name := range cfg.Sysctls {
		path := filepath.Join("/proc/sys", name)
		value, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // e.g. no kernel keys here: kubelet only logs that
		} else if err != nil {
			return err
		}
		copyPath := filepath.Join(cfg.SysctlDir, strings.ReplaceAll(name, "/", "."))
		if err := os.WriteFile(copyPath, value, 0o644); err != nil {
			return err
		}
		if err := syscall.Mount(copyPath, path, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("shadowing %s: %w", path, err)
		}
	}
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting a tmpfs on /run: %w", err)
	}
	for _, b := range [][2]string{{cfg.VarLib, "/var/lib"}, {cfg.VarLog, "/var/log"}} {
		if err := syscall.Mount(b[0], b[1], "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s on %s: %w", b[0], b[1], err)
		}
	}
	return nil
}

// nodeNetwork brings the sandbox's network up: lo with the "kubernetes"
// Service IP (where localcluster's proxy to kube-apiserver listens), and
// eth0, the node's end of the veth pair, once localcluster has moved it
// in. There is no default route: nothing in here reaches past the host.
func nodeNetwork(cfg *sandboxConfig) error {
	deadline := time.Now().Add(linkWait)
	for {
		if _, err := net.InterfaceByName("eth0"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("eth0 did not appear within %s", linkWait)
		}
		time.Sleep(20 * time.Millisecond) // polled: there is nothing to wait on
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", cfg.ServiceIP + "/32", "dev", "lo"},
		{"addr", "add", cfg.NodeAddr, "dev", "eth0"},
		{"link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command(cfg.IP, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// importImages imports every archive into containerd's k8s.io namespace
// (the CRI's), then checks that the sandbox image is among them.
func importImages(cfg *sandboxConfig) error {
	for _, archive := range cfg.Images {
		began := time.Now()
		out, err := exec.Command(cfg.Ctr, "--address", containerdSocket, "-n", "k8s.io", "images", "import", archive).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s: %v: %s", archive, err, oneLine(string(out)))
		}
		logf("imported %s in %s: %s", filepath.Base(archive), time.Since(began).Round(100*time.Millisecond), oneLine(string(out)))
	}
	out, err := exec.Command(cfg.Ctr, "--address", containerdSocket, "-n", "k8s.io", "images", "ls", "-q").Output()
	if err != nil {
		return fmt.Errorf("listing images: %w", err)
	}
	if !slices.Contains(strings.Fields(string(out)), sandboxImage) {
		return fmt.Errorf("the sandbox image %s is not among the images imported from --images (%d archives)", sandboxImage, len(cfg.Images))
	}
	return nil
}

// childExit is a supervised child that exited.
type childExit struct {
	name   string
	status syscall.WaitStatus
}

// supervisor runs containerd and kubelet as children of the sandbox and
// reports their exits. As the PID namespace's init it also reaps the
// orphans that are reparented to it (containerd's shims).
type supervisor struct {
	pids  map[int]string    // child PID -> name; read by reap
	logs  map[string]string // name -> log file
	exits chan childExit
	// exited holds the children whose exit was received from exits; only
	// the sandbox's main goroutine uses it.
	exited map[string]bool
	// reaping is set once reap runs; before, the sandbox's own commands
	// (ip, ctr) wait for their processes themselves.
	reaping bool
}

// start starts argv as the child name, its output appended to logPath, in
// its own process group so that localcluster's signals to the sandbox's
// group reach only the sandbox, which stops them in order.
func (sv *supervisor) start(name string, argv []string, logPath string) error {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	if sv.pids == nil {
		sv.pids, sv.logs = map[int]string{}, map[string]string{}
	}
	sv.pids[cmd.Process.Pid] = name
	sv.logs[name] = logPath
	return nil
}

// startContainerd starts containerd and waits for its socket, or for it
// to exit, or for a stop signal.
func (sv *supervisor) startContainerd(cfg *sandboxConfig, stop <-chan os.Signal) error {
	began := time.Now()
	if err := sv.start("containerd", cfg.Containerd, cfg.ContainerdLog); err != nil {
		return err
	}
	pid := sv.pidOf("containerd")
	deadline := time.Now().Add(containerdWait)
	for {
		if conn, err := net.Dial("unix", containerdSocket); err == nil {
			conn.Close()
			logf("containerd ready in %s", time.Since(began).Round(100*time.Millisecond))
			return nil
		}
		var ws syscall.WaitStatus
		if got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid {
			sv.exited["containerd"] = true
			return fmt.Errorf("containerd %s%s", describe(ws), lastLogLine(cfg.ContainerdLog))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd's socket did not appear within %s%s", containerdWait, lastLogLine(cfg.ContainerdLog))
		}
		select {
		case sig := <-stop:
			return fmt.Errorf("got %s while starting containerd", sig)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pidOf returns the PID of the named child, or 0.
func (sv *supervisor) pidOf(name string) int {
	for pid, n := range sv.pids {
		if n == name {
			return pid
		}
	}
	return 0
}

// startReaping starts reap, once.
func (sv *supervisor) startReaping() {
	if !sv.reaping {
		sv.reaping = true
		go sv.reap()
	}
}

// reap waits for every child of the sandbox, its own and the orphans, and
// reports the exit of its own on sv.exits. It runs until no child is left.
func (sv *supervisor) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		} else if err != nil {
			return
		}
		if name, ok := sv.pids[pid]; ok {
			sv.exits <- childExit{name: name, status: ws}
		}
	}
}

// stop stops kubelet, then containerd, each with SIGTERM and a short wait.
// What is left (shims, containers) dies with the PID namespace when the
// sandbox exits.
func (sv *supervisor) stop() {
	sv.startReaping()
	for _, step := range []struct {
		name string
		wait time.Duration
	}{{"kubelet", kubeletStopWait}, {"containerd", containerdStopWait}} {
		pid := sv.pidOf(step.name)
		if pid == 0 || sv.exited[step.name] {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		timer := time.NewTimer(step.wait)
	wait:
		for {
			select {
			case e := <-sv.exits:
				sv.exited[e.name] = true
				if e.name == step.name {
					break wait
				}
			case <-timer.C:
				logf("%s did not stop within %s", step.name, step.wait)
				break wait
			}
		}
		timer.Stop()
	}
}

// lastLogLine returns ": " and the last non-empty line of the log at
// path (shortened), or "" when there is none, to say why a child failed.
func lastLogLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	last := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			last = line
		}
	}
	if last == "" {
		return ""
	}
	return fmt.Sprintf(" (%s: %s)", filepath.Base(path), oneLine(last))
}
