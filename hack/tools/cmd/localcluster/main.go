// Command localcluster runs a throwaway local Kubernetes control plane —
// etcd, kube-apiserver and kube-controller-manager — on free 127.0.0.1
// ports, for development (make run) and end-to-end tests.
//
// Usage:
//
//	localcluster [--bin-dir DIR] [--state-dir DIR [--cleanup]] [--print-try-it] [--with-nodes] [--real-node --images DIR] [--timeout D] [-- COMMAND [ARGS...]]
//
// With --with-nodes it also starts kube-scheduler and kwok with one fake
// Node, so Pods are scheduled and become Running.
//
// With --real-node it also starts kube-scheduler and a real node:
// containerd and kubelet, in mount, network and PID namespaces of their
// own, with the images of --images imported, so that Pods really run. Its
// Node is labelled reroll.dev/node=real and, beside kwok's, tainted
// reroll.dev/node=real:NoSchedule. A host that cannot run it gets one
// line, "localcluster: real node unavailable: <why>", also written into
// cluster.json as realNodeError, and the cluster starts without it.
//
// Once the cluster is ready it writes <state-dir>/kubeconfig (admin,
// client-certificate auth) and then, atomically, <state-dir>/cluster.json,
// and prints "localcluster: ready kubeconfig=<path>" on stdout. With a
// COMMAND it runs it with KUBECONFIG set and exits with its exit code;
// otherwise it runs until SIGINT or SIGTERM. Meanwhile SIGUSR1 kills
// kube-apiserver, and the next SIGUSR1 starts it again on the same port
// (SIGUSR2 does the same to etcd), for fault tests; cluster.json is
// rewritten with the PIDs of the running components each time, once the
// component is down or serving again. Either way every process it started
// is stopped by PID before it exits.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// commandGrace is how long the user command gets to exit after it was
// signalled before it is killed.
const commandGrace = 10 * time.Second

// config is the parsed command line.
type config struct {
	binDir     string
	stateDir   string
	cleanup    bool
	printTryIt bool
	withNodes  bool
	realNode   bool
	// kwokFallback starts kwok's fake node when the real node cannot
	// start (make run).
	kwokFallback bool
	imagesDir    string
	timeout      time.Duration
	command      []string
}

// clusterInfo is the content of <state-dir>/cluster.json.
type clusterInfo struct {
	Kubeconfig string            `json:"kubeconfig"`
	Server     string            `json:"server"`
	CAFile     string            `json:"caFile"`
	StateDir   string            `json:"stateDir"`
	Logs       map[string]string `json:"logs"`
	PIDs       map[string]int    `json:"pids"`
	// RealNode is the real node's name, once it is Ready; RealNodeError
	// says in one line why there is none (with --real-node).
	RealNode      string `json:"realNode,omitempty"`
	RealNodeError string `json:"realNodeError,omitempty"`
}

// logger prints "localcluster: " prefixed progress lines.
type logger struct {
	w io.Writer
}

// printf prints one progress line.
func (l *logger) printf(format string, args ...any) {
	fmt.Fprintf(l.w, "localcluster: "+format+"\n", args...)
}

// main runs localcluster and exits with its exit code. With sandboxArg
// first it is the real node's sandbox instead (see runSandbox).
func main() {
	if len(os.Args) > 1 && os.Args[1] == sandboxArg {
		os.Exit(runSandbox(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parseFlags parses the command line; arguments after "--" are the command.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("localcluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.binDir, "bin-dir", "", "directory with etcd, kube-apiserver and kube-controller-manager (default: the directory of this executable)")
	fs.StringVar(&cfg.stateDir, "state-dir", "", "directory for data, certificates, logs, kubeconfig and cluster.json; kept on exit unless --cleanup (default: a new temporary directory, removed on exit)")
	fs.BoolVar(&cfg.cleanup, "cleanup", false, "remove what localcluster wrote into --state-dir on exit")
	fs.BoolVar(&cfg.printTryIt, "print-try-it", false, `print a short "try it" hint once the cluster is ready`)
	fs.BoolVar(&cfg.withNodes, "with-nodes", false, "also start kube-scheduler and kwok with one fake Node, so Pods get scheduled and become Running")
	fs.BoolVar(&cfg.realNode, "real-node", false, "also start kube-scheduler and a real node (containerd and kubelet, in namespaces of their own), where Pods really run; needs root")
	fs.BoolVar(&cfg.kwokFallback, "kwok-fallback", false, "with --real-node: when the real node cannot start, start kwok's fake Node instead (its Pods become Running, but no container runs), and say so in one line")
	fs.StringVar(&cfg.imagesDir, "images", "", "with --real-node: import every *.tar image archive in this directory into the node's containerd (it must hold "+sandboxImage+")")
	fs.DurationVar(&cfg.timeout, "timeout", 90*time.Second, "startup deadline")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: localcluster [flags] [-- COMMAND [ARGS...]]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg.command = fs.Args()
	if cfg.binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return nil, err
		}
		cfg.binDir = filepath.Dir(exe)
	}
	for _, dir := range []*string{&cfg.binDir, &cfg.stateDir, &cfg.imagesDir} {
		if *dir != "" {
			abs, err := filepath.Abs(*dir)
			if err != nil {
				return nil, err
			}
			*dir = abs
		}
	}
	bins := []string{"etcd", "kube-apiserver", "kube-controller-manager"}
	hint := "hack/build-control-plane.sh"
	if cfg.withNodes || cfg.realNode {
		bins = append(bins, "kube-scheduler")
		hint = "WITH_NODES=1 " + hint
	}
	if cfg.withNodes || cfg.kwokFallback {
		bins = append(bins, "kwok")
	}
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(cfg.binDir, bin)); err != nil {
			return nil, fmt.Errorf("%s not found in --bin-dir %s (build it with %s): %w", bin, cfg.binDir, hint, err)
		}
	}
	return cfg, nil
}

// stateFiles are the entries localcluster creates in the state dir; they are
// removed before startup (every start is a fresh cluster) and by --cleanup.
func stateFiles() []string {
	return []string{
		"etcd", "pki", "flexvolume", "kubeconfig", "cluster.json", "kube-controller-manager.kubeconfig",
		"etcd.log", "kube-apiserver.log", "kube-controller-manager.log",
		"kube-scheduler.kubeconfig", "kube-scheduler.log",
		"kwok.kubeconfig", "kwok-stages.yaml", "kwok-home", "kwok.log",
		"node", "node-sandbox.log", "containerd.log", "kubelet.log",
	}
}

// prepareStateDir creates (or resets) the state dir and returns a function
// that removes what should not survive exit.
func prepareStateDir(cfg *config) (cleanup func(), err error) {
	if cfg.stateDir == "" {
		dir, err := os.MkdirTemp("", "localcluster-")
		if err != nil {
			return nil, err
		}
		cfg.stateDir = dir
		return func() { _ = os.RemoveAll(dir) }, nil
	}
	if err := os.MkdirAll(cfg.stateDir, 0o755); err != nil {
		return nil, err
	}
	removeOurs := func() {
		for _, name := range stateFiles() {
			_ = os.RemoveAll(filepath.Join(cfg.stateDir, name))
		}
	}
	removeOurs()
	if !cfg.cleanup {
		return func() {}, nil
	}
	return func() {
		removeOurs()
		_ = os.Remove(cfg.stateDir) // only if now empty
	}, nil
}

// run starts the cluster, runs the command or waits for a signal, tears
// everything down and returns the exit code.
//
// Long: the order of its steps is what makes teardown complete (signals
// taken before anything starts, the state dir before the cluster, the
// teardown deferred before the first component), and it reads best in one
// place.
func run(args []string, stdout, stderr io.Writer) (code int) {
	log := &logger{w: stderr}
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		log.printf("%v", err)
		return 2
	}

	// Registered before anything is started, so no signal is missed; the
	// buffer holds a second signal that arrives while the first is handled.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// Restart requests are taken from the start too: one that arrives
	// before the cluster is ready waits for it, rather than killing us.
	faults := make(chan os.Signal, 4)
	signal.Notify(faults, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(faults)

	removeState, err := prepareStateDir(cfg)
	if err != nil {
		log.printf("state dir: %v", err)
		return 1
	}
	defer removeState()

	c := &cluster{
		binDir: cfg.binDir, stateDir: cfg.stateDir, withNodes: cfg.withNodes,
		realNode: cfg.realNode, kwokFallback: cfg.kwokFallback, imagesDir: cfg.imagesDir,
		log: log, died: make(chan *component, 8),
	}
	defer func() {
		// The real node's pods are drained while kube-apiserver still
		// runs; what the node left on the host goes once all is stopped.
		c.node.drain(c)
		if forced := c.stop(sigs); forced && code == 0 {
			code = 1
		}
		c.node.cleanup()
	}()

	began := time.Now()
	if err := c.startAll(cfg.timeout, sigs); err != nil {
		var es *errStartup
		if errors.As(err, &es) && es.sig != nil {
			log.printf("startup %v: tearing down", err)
			return 128 + int(es.sig.(syscall.Signal))
		}
		log.printf("startup failed: %v", err)
		if failed := c.failedComponent(err); failed != nil {
			printLogTail(stderr, failed)
		}
		return 1
	}

	info := newClusterInfo(c)
	if err := writeInfo(info, c); err != nil {
		log.printf("%v", err)
		return 1
	}
	log.printf("cluster ready in %s (state dir %s)", since(began), cfg.stateDir)
	fmt.Fprintf(stdout, "localcluster: ready kubeconfig=%s\n", info.Kubeconfig)
	if cfg.printTryIt {
		printTryIt(stderr, info.Kubeconfig, c.node != nil)
	}

	if len(cfg.command) > 0 {
		return runCommand(cfg.command, info.Kubeconfig, c, sigs, log, stderr)
	}
	return serve(c, info, sigs, faults, stderr)
}

// printTryIt prints how to try reroll on the cluster of kubeconfig: apply
// the example, edit its ConfigMap, and, on a real node, see its pods print
// the new value.
func printTryIt(w io.Writer, kubeconfig string, realNode bool) {
	kc := "kubectl --kubeconfig=" + kubeconfig
	fmt.Fprintf(w, "try it: %s apply -f examples/app.yaml\n", kc)
	if realNode {
		fmt.Fprintf(w, "        %s logs deploy/web -f        # the app prints its config: env=info file=hello\n", kc)
	}
	fmt.Fprintf(w, "        %s patch configmap web-config --type=merge -p '{\"data\":{\"LOG_LEVEL\":\"debug\"}}'\n", kc)
	if realNode {
		fmt.Fprintf(w, "        %s logs -l app=web --prefix --tail=1   # after the roll, the new pods print env=debug\n", kc)
	} else {
		fmt.Fprintf(w, "        %s get rs -l app=web          # a new ReplicaSet (its pods run nothing on kwok's fake node)\n", kc)
	}
	fmt.Fprintf(w, "        KUBECONFIG=%s bin/kubectl-reroll status -A   # what reroll sees (it finds reroll by itself)\n", kubeconfig)
}

// newClusterInfo returns what cluster.json says of the ready cluster c.
func newClusterInfo(c *cluster) clusterInfo {
	info := clusterInfo{
		Kubeconfig:    filepath.Join(c.stateDir, "kubeconfig"),
		Server:        c.server,
		CAFile:        c.pki.path("ca.crt"),
		StateDir:      c.stateDir,
		Logs:          c.logPaths(),
		PIDs:          c.pids(),
		RealNodeError: c.nodeErr,
	}
	if c.node != nil {
		// containerd and kubelet are the node sandbox's children.
		info.RealNode = realNodeName
		info.Logs["containerd"] = filepath.Join(c.stateDir, "containerd.log")
		info.Logs["kubelet"] = filepath.Join(c.stateDir, "kubelet.log")
	}
	return info
}

// serve runs the ready cluster until a signal or a component's death ends
// it, and returns the exit code. SIGUSR1 and SIGUSR2 in the meantime stop
// or start again kube-apiserver and etcd (see toggle), for fault tests.
func serve(c *cluster, info clusterInfo, sigs, faults <-chan os.Signal, stderr io.Writer) int {
	for {
		select {
		case sig := <-sigs:
			c.log.printf("got %s: tearing down", sig)
			return 0
		case comp := <-c.died:
			c.log.printf("%s exited unexpectedly (%v): tearing down", comp.name, comp.err)
			printLogTail(stderr, comp)
			return 1
		case sig := <-faults:
			if err := c.injectFault(sig, info, sigs); err != nil {
				c.log.printf("stopping or starting %s: %v: tearing down", faultTarget(sig), err)
				return 1
			}
		}
	}
}

// startAll generates the PKI and starts etcd, kube-apiserver,
// kube-controller-manager (and with --with-nodes kube-scheduler and kwok,
// with --real-node kube-scheduler and the real node) in turn, all within
// timeout. A real node that cannot start is no failure: the cluster goes
// on without it, and c.nodeErr says why.
func (c *cluster) startAll(timeout time.Duration, sigs <-chan os.Signal) error {
	deadline := time.Now().Add(timeout)
	var err error
	if c.pki, err = newPKI(filepath.Join(c.stateDir, "pki")); err != nil {
		return fmt.Errorf("generating certificates: %w", err)
	}
	if c.client, err = newAdminClient(c.pki); err != nil {
		return err
	}
	if err := c.startEtcd(deadline, sigs); err != nil {
		return err
	}
	if err := c.startAPIServer(deadline, sigs); err != nil {
		return err
	}
	if err := c.startControllerManager(deadline, sigs); err != nil {
		return err
	}
	if c.withNodes || c.realNode {
		if err := c.startScheduler(deadline, sigs); err != nil {
			return err
		}
	}
	if c.withNodes {
		if err := c.startKwok(deadline, sigs); err != nil {
			return err
		}
	}
	if !c.realNode {
		return nil
	}
	err = c.startRealNode(deadline, sigs)
	var unavailable *errNodeUnavailable
	if errors.As(err, &unavailable) {
		c.abandonNode()
		c.nodeErr = oneLine(unavailable.reason)
		if !c.kwokFallback || c.withNodes {
			c.log.printf("real node unavailable: %s", c.nodeErr)
			return nil
		}
		c.log.printf("real node unavailable: %s; falling back to kwok's fake node: pods are scheduled and Running, but no container runs", c.nodeErr)
		return c.startKwok(deadline, sigs)
	}
	return err
}

// failedComponent picks the component whose log explains a startup error:
// the one that exited, else the last one started.
func (c *cluster) failedComponent(err error) *component {
	var es *errStartup
	if errors.As(err, &es) && es.died != nil {
		return es.died
	}
	if len(c.comps) == 0 {
		return nil
	}
	return c.comps[len(c.comps)-1]
}

// writeInfo writes the admin kubeconfig and then cluster.json, both
// atomically; cluster.json last, so its presence means everything is ready.
func writeInfo(info clusterInfo, c *cluster) error {
	if err := writeFileAtomic(info.Kubeconfig, kubeconfig(c.server, c.pki.ca, c.pki.admin, "localcluster-admin"), 0o600); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(info.StateDir, "cluster.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing cluster.json: %w", err)
	}
	return nil
}

// runCommand runs the user command with KUBECONFIG set and stdio passed
// through, and returns its exit code. Signals are forwarded to it; if a
// control-plane component dies, the command is stopped and 1 is returned.
func runCommand(argv []string, kubeconfigPath string, c *cluster, sigs <-chan os.Signal, log *logger, stderr io.Writer) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfigPath)
	cmd.SysProcAttr = commandSysProcAttr()
	if err := cmd.Start(); err != nil {
		log.printf("%v", err)
		return 127
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	code := -1
	select {
	case <-done:
	case sig := <-sigs:
		// Ctrl-C in a terminal already reached the command (it shares our
		// process group); forwarding it would deliver it twice.
		if sig != syscall.SIGINT || !inForegroundOfTerminal() {
			_ = cmd.Process.Signal(sig)
		}
		log.printf("got %s: waiting for %s to exit", sig, argv[0])
		waitCommand(cmd, done, sigs, log)
	case comp := <-c.died:
		log.printf("%s exited unexpectedly (%v): stopping %s", comp.name, comp.err, argv[0])
		printLogTail(stderr, comp)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waitCommand(cmd, done, sigs, log)
		code = 1
	}
	if code < 0 {
		code = exitCode(cmd.ProcessState)
	}
	return code
}

// waitCommand waits for the signalled command to exit; it is killed after
// commandGrace or at the next signal.
func waitCommand(cmd *exec.Cmd, done <-chan struct{}, sigs <-chan os.Signal, log *logger) {
	timer := time.NewTimer(commandGrace)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
		log.printf("command did not exit within %s: killing it", commandGrace)
	case sig := <-sigs:
		log.printf("got %s again: killing command", sig)
	}
	_ = cmd.Process.Kill()
	<-done
}

// exitCode returns the exit status of a finished process, 128+N if it was
// killed by signal N.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
