package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listenInNetns listens on addr (TCP) inside the network namespace at
// nsPath, from this process, which stays in the host's. A socket belongs
// to the namespace it was created in, so one OS thread switches there
// for the socket's creation and back. IP_FREEBIND lets it bind before
// the address is configured in there.
func listenInNetns(nsPath, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Locked, and unlocked only once back in the host's namespace: a
		// goroutine that exits locked takes its thread with it, which is
		// what happens if the way back fails.
		runtime.LockOSThread()
		ln, back, err := listenFromThread(nsPath, addr)
		if back {
			runtime.UnlockOSThread()
		}
		done <- result{ln, err}
	}()
	r := <-done
	return r.ln, r.err
}

// listenFromThread does listenInNetns' work on the locked thread. back
// reports whether the thread is in its own namespace again.
func listenFromThread(nsPath, addr string) (ln net.Listener, back bool, err error) {
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		return nil, true, err
	}
	defer self.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, true, err
	}
	defer target.Close()
	if err := setns(target); err != nil {
		return nil, true, fmt.Errorf("entering %s: %w", nsPath, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	ln, err = lc.Listen(context.Background(), "tcp4", addr)
	if err := setns(self); err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, false, fmt.Errorf("returning to the host's network namespace: %w", err)
	}
	return ln, true, err
}

// setns moves the calling thread into the network namespace of f.
func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// apiProxy forwards the connections it accepts, inside the node's network
// namespace, to kube-apiserver on the host's loopback: TLS passes through
// it untouched. It stands in for kube-proxy's one Service the node needs.
type apiProxy struct {
	ln     net.Listener
	target string // host:port of kube-apiserver
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // open connections, both ends
	closed bool
	wg     sync.WaitGroup
}

// newAPIProxy starts forwarding connections from ln to target.
func newAPIProxy(ln net.Listener, target string) *apiProxy {
	p := &apiProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p
}

// serve accepts connections until the listener is closed.
func (p *apiProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
				continue
			}
			return
		}
		p.wg.Add(1)
		go p.forward(in)
	}
}

// track registers c as open, or closes it and returns false if the proxy
// is closing.
func (p *apiProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// forget closes c and stops tracking it.
func (p *apiProxy) forget(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// forward copies bytes both ways between in and a new connection to the
// target, until either side closes.
func (p *apiProxy) forward(in net.Conn) {
	defer p.wg.Done()
	if !p.track(in) {
		return
	}
	defer p.forget(in)
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return // kube-apiserver is down (a fault test): the client retries
	}
	if !p.track(out) {
		return
	}
	defer p.forget(out)
	copied := make(chan struct{}, 2)
	for _, pair := range [][2]net.Conn{{out, in}, {in, out}} {
		go func() {
			_, _ = io.Copy(pair[0], pair[1])
			if tc, ok := pair[0].(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			copied <- struct{}{}
		}()
	}
	<-copied
	<-copied
}

// close stops accepting, closes every open connection and waits for the
// forwarding goroutines. Afterwards nothing of this process holds the
// node's network namespace, which can then go away.
func (p *apiProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
