package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// restartTimeout bounds how long a component started again may take to
// serve.
const restartTimeout = time.Minute

// faultTarget returns the component a fault signal stops or starts:
// SIGUSR1 kube-apiserver, SIGUSR2 etcd.
func faultTarget(sig os.Signal) string {
	if sig == syscall.SIGUSR2 {
		return "etcd"
	}
	return "kube-apiserver"
}

// toggle stops the named component if it runs, and starts it again if it
// was stopped this way. It stops with SIGKILL, as a node failure or an OOM
// kill would; it starts with the same command line, so on the same ports
// and data, and waits until the component serves again. Clients see what a
// real control-plane outage does to them: broken watches, refused
// connections, then a server with fresh watch caches.
func (c *cluster) toggle(name string, sigs <-chan os.Signal) error {
	i := c.componentIndex(name)
	if i < 0 {
		return fmt.Errorf("no %s to stop or start", name)
	}
	comp := c.comps[i]
	began := time.Now()
	if !comp.exited() {
		if err := kill(comp); err != nil {
			return err
		}
		c.log.printf("%s killed (fault injected): send the same signal to start it again", name)
		return nil
	}
	next, err := c.launch(comp.name, comp.env, comp.args)
	if err != nil {
		return err
	}
	c.comps[i] = next
	ready := c.apiServerReady
	if name == "etcd" {
		ready = c.etcdHealthy
	}
	if err := c.waitReady(time.Now().Add(restartTimeout), sigs, name, ready); err != nil {
		return err
	}
	c.log.printf("%s started again and serving in %s", name, since(began))
	if name == "kube-apiserver" {
		return c.restartClients()
	}
	return nil
}

// restartClients starts again the components that are clients of
// kube-apiserver (controller manager, scheduler, kwok), after it came back.
// Their reflectors backed off during the outage, by up to a minute; the
// ReplicaSets and Pods that fault tests count would wait for them, and a
// test would measure them instead of the controller under test.
func (c *cluster) restartClients() error {
	for _, name := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
		i := c.componentIndex(name)
		if i < 0 {
			continue
		}
		comp := c.comps[i]
		if err := kill(comp); err != nil {
			return err
		}
		next, err := c.launch(comp.name, comp.env, comp.args)
		if err != nil {
			return err
		}
		c.comps[i] = next
	}
	c.log.printf("restarted the API server's clients, so that their informers do not wait out their backoff")
	return nil
}

// kill kills comp with SIGKILL, marked replaced so that its exit is not
// taken for a failure, and waits until it has been reaped.
func kill(comp *component) error {
	comp.replaced.Store(true)
	comp.signal(syscall.SIGKILL)
	waitDone(comp, killWait)
	if !comp.exited() {
		return fmt.Errorf("%s did not exit within %s of SIGKILL", comp.name, killWait)
	}
	return nil
}

// componentIndex returns the index of the named component in c.comps, or
// -1.
func (c *cluster) componentIndex(name string) int {
	for i, comp := range c.comps {
		if comp.name == name {
			return i
		}
	}
	return -1
}

// injectFault handles a fault signal: it stops or starts the component and
// rewrites cluster.json with the PIDs of the running components, so that a
// client can tell when the fault is in place or over.
func (c *cluster) injectFault(sig os.Signal, info clusterInfo, sigs <-chan os.Signal) error {
	if err := c.toggle(faultTarget(sig), sigs); err != nil {
		return err
	}
	info.PIDs = c.pids()
	return writeInfo(info, c)
}
