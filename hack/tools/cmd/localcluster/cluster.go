package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// stopGrace is how long a process gets after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// killWait bounds the wait for a process to disappear after SIGKILL.
	killWait = 2 * time.Second
	// logTailLines is how much of a failing component's log is printed.
	logTailLines = 40
	// serviceCIDR is the Service IP range; 10.0.0.1 is in the serving cert.
	serviceCIDR = "10.0.0.0/24"
	// saIssuer is the ServiceAccount token issuer and API audience.
	saIssuer = "https://kubernetes.default.svc.cluster.local"
)

// component is one control-plane process started by localcluster.
type component struct {
	name    string
	args    []string // its command line, to start it again the same way
	env     []string // added to its environment
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
	err     error         // exit status; valid after done is closed
	// replaced is set before localcluster itself kills the process (a
	// fault it injects), so that its exit is not taken for a failure.
	replaced atomic.Bool
}

// exited reports whether the process has exited.
func (c *component) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the component's process group (whose id is the PID
// of the process localcluster started), unless it has already exited.
func (c *component) signal(sig syscall.Signal) {
	if !c.exited() {
		_ = syscall.Kill(-c.cmd.Process.Pid, sig)
	}
}

// cluster is the set of running control-plane processes and their state.
type cluster struct {
	binDir    string
	stateDir  string
	withNodes bool
	// realNode asks for a real node, with the images of imagesDir; node
	// is that node once it is started (its sandbox is in comps), nodeErr
	// why it is not.
	realNode     bool
	kwokFallback bool
	imagesDir    string
	node         *realNode
	nodeErr      string
	log          *logger
	comps        []*component
	died         chan *component // receives each component that exits
	pki          *pki

	etcdURL string
	server  string       // https://127.0.0.1:PORT of kube-apiserver
	client  *http.Client // admin client for kube-apiserver
}

// errStartup is returned by waitReady when startup was interrupted.
type errStartup struct {
	sig  os.Signal  // set when a signal arrived
	died *component // set when a component exited
}

// Error describes why startup stopped.
func (e *errStartup) Error() string {
	if e.sig != nil {
		return "interrupted by " + e.sig.String()
	}
	return fmt.Sprintf("%s exited during startup: %v", e.died.name, e.died.err)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. All listeners
// are held until every port is chosen, then released for the components.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start launches binary name with args as a component, in its own process
// group, with stdout and stderr written to <state-dir>/<name>.log and env
// added to its environment.
func (c *cluster) start(name string, env []string, args ...string) (*component, error) {
	comp, err := c.launch(name, env, args)
	if err != nil {
		return nil, err
	}
	c.comps = append(c.comps, comp)
	return comp, nil
}

// launch starts a component's process from the bin dir, appending to its
// log, and reports its exit on c.died unless it was replaced.
func (c *cluster) launch(name string, env, args []string) (*component, error) {
	return c.spawn(name, filepath.Join(c.binDir, name), env, args, componentSysProcAttr(), true)
}

// spawn starts the program at path as the component name, with attr,
// stdout and stderr appended to <state-dir>/<name>.log and env added to
// its environment. With report, its exit is sent on c.died unless it was
// replaced; without, whoever started it watches comp.done.
func (c *cluster) spawn(name, path string, env, args []string, attr *syscall.SysProcAttr, report bool) (*component, error) {
	logPath := filepath.Join(c.stateDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = c.stateDir
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	comp := &component{name: name, args: args, env: env, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		comp.err = cmd.Wait()
		close(comp.done)
		if report && !comp.replaced.Load() {
			c.died <- comp
		}
	}()
	return comp, nil
}

// startEtcd starts etcd on free loopback ports with its data in the state
// dir, and waits until it reports healthy.
func (c *cluster) startEtcd(deadline time.Time, sigs <-chan os.Signal) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	c.etcdURL = client
	began := time.Now()
	if _, err := c.start("etcd", nil,
		"--name=localcluster",
		"--data-dir="+filepath.Join(c.stateDir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=localcluster="+peer,
		"--unsafe-no-fsync",
	); err != nil {
		return err
	}
	err = c.waitReady(deadline, sigs, "etcd", c.etcdHealthy)
	if err == nil {
		c.log.printf("etcd ready in %s (%s)", since(began), client)
	}
	return err
}

// etcdHealthy checks etcd's /health.
func (c *cluster) etcdHealthy(ctx context.Context) error {
	body, err := get(ctx, &http.Client{Timeout: 2 * time.Second}, c.etcdURL+"/health")
	if err == nil && !strings.Contains(body, `"health":"true"`) {
		err = errors.New(strings.TrimSpace(body))
	}
	return err
}

// apiServerReady checks kube-apiserver's /readyz.
func (c *cluster) apiServerReady(ctx context.Context) error {
	body, err := get(ctx, c.client, c.server+"/readyz")
	if err == nil && strings.TrimSpace(body) != "ok" {
		err = errors.New(strings.TrimSpace(body))
	}
	return err
}

// startAPIServer starts kube-apiserver with TLS, RBAC and ServiceAccount
// token signing, and waits for /readyz.
func (c *cluster) startAPIServer(deadline time.Time, sigs <-chan os.Signal) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	c.server = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	p := c.pki
	began := time.Now()
	if _, err := c.start("kube-apiserver", nil,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[0]),
		"--etcd-servers="+c.etcdURL,
		"--tls-cert-file="+p.path("apiserver.crt"),
		"--tls-private-key-file="+p.path("apiserver.key"),
		"--client-ca-file="+p.path("ca.crt"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer="+saIssuer,
		"--service-account-key-file="+p.path("sa.pub"),
		"--service-account-signing-key-file="+p.path("sa.key"),
		"--api-audiences="+saIssuer,
		"--service-cluster-ip-range="+serviceCIDR,
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--requestheader-client-ca-file="+p.path("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+p.path("front-proxy-client.crt"),
		"--proxy-client-key-file="+p.path("front-proxy-client.key"),
		// kubelet's API (logs, exec, port-forward) of the real node, at
		// its InternalIP: its name resolves nowhere.
		"--kubelet-client-certificate="+p.path("apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+p.path("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--profiling=false",
	); err != nil {
		return err
	}
	err = c.waitReady(deadline, sigs, "kube-apiserver", c.apiServerReady)
	if err == nil {
		c.log.printf("kube-apiserver ready in %s (%s)", since(began), c.server)
	}
	return err
}

// startControllerManager starts kube-controller-manager with every default
// controller and waits until it has created ServiceAccount default/default,
// which shows its controllers are running (its /healthz answers earlier).
func (c *cluster) startControllerManager(deadline time.Time, sigs <-chan os.Signal) error {
	kcmKubeconfig := filepath.Join(c.stateDir, "kube-controller-manager.kubeconfig")
	if err := os.WriteFile(kcmKubeconfig, kubeconfig(c.server, c.pki.ca, c.pki.kcm, "system:kube-controller-manager"), 0o600); err != nil {
		return err
	}
	p := c.pki
	began := time.Now()
	if _, err := c.start("kube-controller-manager", nil,
		"--kubeconfig="+kcmKubeconfig,
		"--secure-port=0", // no serving endpoint needed; avoids another port
		"--controllers=*",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+p.path("sa.key"),
		"--root-ca-file="+p.path("ca.crt"),
		"--cluster-signing-cert-file="+p.path("ca.crt"),
		"--cluster-signing-key-file="+p.path("ca.key"),
		"--service-cluster-ip-range="+serviceCIDR,
		"--cluster-name=localcluster",
		// The default is under /usr/libexec, which it would create.
		"--flex-volume-plugin-dir="+filepath.Join(c.stateDir, "flexvolume"),
		"--leader-elect=false",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--profiling=false",
	); err != nil {
		return err
	}
	err := c.waitReady(deadline, sigs, "kube-controller-manager", func(ctx context.Context) error {
		_, err := get(ctx, c.client, c.server+"/api/v1/namespaces/default/serviceaccounts/default")
		return err
	})
	if err == nil {
		c.log.printf("kube-controller-manager ready in %s", since(began))
	}
	return err
}

// newAdminClient returns an HTTP client that trusts the cluster CA and
// authenticates with the admin client certificate.
func newAdminClient(p *pki) (*http.Client, error) {
	pair, err := tls.X509KeyPair(p.admin.certPEM, p.admin.keyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.cert)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}},
		},
	}, nil
}

// get performs a GET and returns the body, or an error for non-2xx replies.
func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	return send(ctx, hc, http.MethodGet, url, "", nil)
}

// send performs a request with body of contentType (none when body is
// nil) and returns the reply's body, or an error for non-2xx replies.
func send(ctx context.Context, hc *http.Client, method, url, contentType string, body []byte) (string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(reply)))
	}
	return string(reply), nil
}

// waitReady polls check every 100ms until it succeeds, the deadline passes,
// a signal arrives or a component exits.
func (c *cluster) waitReady(deadline time.Time, sigs <-chan os.Signal, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(reqCtx)
		reqCancel()
		if last == nil {
			return nil
		}
		select {
		case sig := <-sigs:
			return &errStartup{sig: sig}
		case comp := <-c.died:
			return &errStartup{died: comp}
		case <-ctx.Done():
			return fmt.Errorf("%s not ready before the startup deadline: %v", what, last)
		case <-tick.C:
		}
	}
}

// stop tears down every component in reverse start order: SIGTERM to its
// process group, SIGKILL after stopGrace. A signal on sigs while stopping
// kills everything that is left at once; stop then reports true.
func (c *cluster) stop(sigs <-chan os.Signal) (forced bool) {
	for i := len(c.comps) - 1; i >= 0; i-- {
		if c.stopComponent(c.comps[i], sigs) {
			c.killAll()
			return true
		}
	}
	return false
}

// stopComponent stops comp: SIGTERM to its process group, SIGKILL after
// stopGrace. It returns true, at once, if a signal arrives on sigs
// meanwhile.
func (c *cluster) stopComponent(comp *component, sigs <-chan os.Signal) (interrupted bool) {
	if comp.exited() {
		return false
	}
	began := time.Now()
	comp.signal(syscall.SIGTERM)
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-comp.done:
		c.log.printf("%s stopped in %s", comp.name, since(began))
	case <-timer.C:
		c.log.printf("%s did not stop within %s: killing it", comp.name, stopGrace)
		comp.signal(syscall.SIGKILL)
		waitDone(comp, killWait)
	case sig := <-sigs:
		c.log.printf("got %s while stopping: killing all components", sig)
		return true
	}
	return false
}

// killAll sends SIGKILL to every component still running and waits briefly
// for each to be reaped.
func (c *cluster) killAll() {
	for _, comp := range c.comps {
		comp.signal(syscall.SIGKILL)
	}
	for _, comp := range c.comps {
		waitDone(comp, killWait)
	}
}

// waitDone waits up to d for comp to exit.
func waitDone(comp *component, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-comp.done:
	case <-timer.C:
	}
}

// pids returns the PID of every running component by name.
func (c *cluster) pids() map[string]int {
	m := make(map[string]int, len(c.comps))
	for _, comp := range c.comps {
		if !comp.exited() {
			m[comp.name] = comp.cmd.Process.Pid
		}
	}
	return m
}

// logPaths returns the log file of every component by name.
func (c *cluster) logPaths() map[string]string {
	m := make(map[string]string, len(c.comps))
	for _, comp := range c.comps {
		m[comp.name] = comp.logPath
	}
	return m
}

// printLogTail writes the last lines of comp's log to w.
func printLogTail(w io.Writer, comp *component) {
	f, err := os.Open(comp.logPath)
	if err != nil {
		fmt.Fprintf(w, "localcluster: cannot read %s: %v\n", comp.logPath, err)
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > logTailLines {
			lines = lines[1:]
		}
	}
	fmt.Fprintf(w, "localcluster: ---- last %d lines of %s ----\n", len(lines), comp.logPath)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintf(w, "localcluster: ---- end of %s ----\n", comp.logPath)
}

// since formats the time elapsed since t in seconds, e.g. "3.1s".
func since(t time.Time) string {
	return fmt.Sprintf("%.1fs", time.Since(t).Seconds())
}
