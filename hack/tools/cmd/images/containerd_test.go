package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reroll/reroll/hack/tools/internal/syncbuf"
)

// TestContainerdImportsAndRuns imports the three archives into a
// containerd of its own (Debian's 1.6, with runc), checks the names and
// digests `ctr images ls` shows, and runs each image with `ctr run`. It
// needs root and containerd, so it runs only with REROLL_IMAGES_CONTAINERD=1.
func TestContainerdImportsAndRuns(t *testing.T) {
	if os.Getenv("REROLL_IMAGES_CONTAINERD") != "1" {
		t.Skip("set REROLL_IMAGES_CONTAINERD=1 to import and run the images in a containerd of the test's own " +
			"(needs root and Debian's containerd and runc: apt-get install containerd runc)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("REROLL_IMAGES_CONTAINERD=1 needs root, to run containerd")
	}
	for _, bin := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("REROLL_IMAGES_CONTAINERD=1 needs %s: apt-get install containerd runc", bin)
		}
	}
	built := buildAll(t, testOptions(t, t.TempDir(), buildFakeReroll(t, testVersion), time.Unix(0, 0).UTC()))
	c := startContainerd(t)

	for _, b := range built {
		t.Logf("ctr images import %s: %s", filepath.Base(b.file), c.ctr(t, "images", "import", b.file))
	}
	listed := c.ctr(t, "images", "ls")
	t.Logf("ctr images ls:\n%s", listed)
	digests := map[string]string{}
	for _, line := range strings.Split(listed, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 3 {
			digests[f[0]] = f[2]
		}
	}
	for _, b := range built {
		if digests[b.ref] != b.digest {
			t.Errorf("ctr images ls: %s has digest %q, want %s", b.ref, digests[b.ref], b.digest)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("echoconfig crashes on crash", c.testEchoconfigCrash)
	t.Run("echoconfig reads its file and stops on SIGTERM", c.testEchoconfigFile)
	t.Run("pause stops on SIGTERM", c.testPause)
	t.Run("reroll runs as nonroot", c.testReroll)
}

// containerd is a containerd started by a test, with everything it keeps
// (root, state, socket) in a temporary directory.
type containerd struct {
	dir, sock string
}

// startContainerd starts containerd with a configuration of its own (no
// CRI plugin: ctr needs none) and stops it when the test ends, killing
// any container still running first.
func startContainerd(t *testing.T) *containerd {
	t.Helper()
	dir := t.TempDir()
	c := &containerd{dir: dir, sock: filepath.Join(dir, "containerd.sock")}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc", filepath.Join(dir, "opt"))
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "containerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test binary dies, containerd goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.killContainers(t)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("containerd's log:\n%s", log)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("ctr", "--address", c.sock, "version").Run() == nil {
			return c
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("containerd not serving on %s after 30s; its log:\n%s", c.sock, log)
		}
	}
}

// command is `ctr` on c's socket in the k8s.io namespace, the kubelet's.
func (c *containerd) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ctr", append([]string{"--address", c.sock, "-n", "k8s.io"}, args...)...)
}

// ctr runs ctr with args and returns its output, failing the test if it
// fails.
func (c *containerd) ctr(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.command(ctx, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// runArgs are the arguments of `ctr run` that keep its FIFOs and runc's
// state in c's directory rather than under /run/containerd.
func (c *containerd) runArgs(args ...string) []string {
	return append([]string{"run", "--rm", "--fifo-dir", filepath.Join(c.dir, "fifo"), "--runc-root", filepath.Join(c.dir, "runc")}, args...)
}

// killContainers kills and removes every container left running, so that
// containerd can stop and its snapshots be unmounted.
func (c *containerd) killContainers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := c.command(ctx, "tasks", "ls", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		t.Logf("killing container %s left running", id)
		_ = c.command(ctx, "tasks", "kill", "-s", "SIGKILL", id).Run()
		_ = c.command(ctx, "tasks", "delete", "-f", id).Run()
		_ = c.command(ctx, "containers", "rm", id).Run()
	}
}

// testEchoconfigCrash runs echoconfig with the value "crash": it prints
// its line, then exits 1, and ctr run with it.
func (c *containerd) testEchoconfigCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.command(ctx, c.runArgs("--env", "APP_VALUE=crash", "--env", "APP_PRINT_EVERY=200ms", "--env", "APP_CRASH_AFTER=1s",
		echoconfigRef, "echoconfig-crash")...).CombinedOutput()
	t.Logf("ctr run %s:\n%s", echoconfigRef, out)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("ctr run: %v, want exit status 1", err)
	}
	for _, want := range []string{"echoconfig: started env=crash file=-\n", "echoconfig: env=crash file=-\n", `echoconfig: value is "crash", exiting 1`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// testEchoconfigFile runs echoconfig with a file mounted at /config, as a
// ConfigMap volume would be, waits for the repeated line and stops it as
// the kubelet would: SIGTERM, to which it answers with status 0.
func (c *containerd) testEchoconfigFile(t *testing.T) {
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "value"), []byte("from-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := c.runUntilKilled(t, "echoconfig-file", "echoconfig: env=hello file=from-file\n",
		"--mount", "type=bind,src="+cfgDir+",dst=/config,options=rbind:ro",
		"--env", "APP_VALUE=hello", "--env", "APP_PRINT_EVERY=200ms", echoconfigRef)
	if err != nil {
		t.Errorf("ctr run after SIGTERM: %v, want exit status 0", err)
	}
	for _, want := range []string{"echoconfig: started env=hello file=from-file\n", "echoconfig: stopping\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// testPause runs the sandbox image and stops it with SIGTERM: status 0.
func (c *containerd) testPause(t *testing.T) {
	out, err := c.runUntilKilled(t, "pause", "", pauseRef)
	if err != nil {
		t.Errorf("ctr run after SIGTERM: %v, want exit status 0", err)
	}
	if !strings.Contains(out, "pause: got terminated, exiting") {
		t.Errorf("output lacks pause's exit line")
	}
}

// testReroll runs reroll's image (with the stand-in binary): the image's
// user is 65532 and the CA bundle is readable; and with the arguments
// --version, as a Deployment's args would be given.
func (c *containerd) testReroll(t *testing.T) {
	ref := rerollRepo + ":" + testVersion
	out := c.ctr(t, c.runArgs(ref, "reroll-user")...)
	t.Logf("ctr run %s: %s", ref, out)
	if out != "uid=65532 gid=65532 ca=true" {
		t.Errorf("got %q, want uid=65532 gid=65532 ca=true", out)
	}
	if out := c.ctr(t, c.runArgs(ref, "reroll-version", "/reroll", "--version")...); out != "reroll "+testVersion {
		t.Errorf("/reroll --version: %q, want %q", out, "reroll "+testVersion)
	}
}

// runUntilKilled runs image (the last of args) as container id until its
// output holds waitFor (or, when waitFor is empty, its task is running),
// then stops it with SIGTERM and returns its output and ctr run's error.
func (c *containerd) runUntilKilled(t *testing.T, id, waitFor string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out syncbuf.Buffer
	cmd := c.command(ctx, c.runArgs(append(args, id)...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		if waitFor != "" && strings.Contains(out.String(), waitFor) {
			break
		}
		if waitFor == "" {
			tasks, _ := c.command(ctx, "tasks", "ls").Output()
			if strings.Contains(string(tasks), id) && strings.Contains(string(tasks), "RUNNING") {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("ctr run %s ended early: %v\n%s", id, err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// A PID 1 ignores a signal it has no handler for yet, and a running
	// task may not have installed its handlers: SIGTERM until it is gone.
	for {
		c.ctr(t, "tasks", "kill", id)
		select {
		case err := <-done:
			t.Logf("ctr run %s:\n%s", id, out.String())
			return out.String(), err
		case <-time.After(time.Second):
		}
	}
}
