package kubeclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
)

// The HTTP/2 stream window must reach the transport client-go really uses,
// and the config's own wrapper must still apply.
func TestLimitHTTP2StreamBuffer(t *testing.T) {
	var seen *http.Transport
	ownWrapperCalled := false
	cfg := &rest.Config{Host: "https://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		ownWrapperCalled = true
		seen = innermostTransport(rt)
		return rt
	}
	cfg.WrapTransport = LimitHTTP2StreamBuffer(cfg.WrapTransport)
	if _, err := rest.HTTPClientFor(cfg); err != nil {
		t.Fatal(err)
	}
	if !ownWrapperCalled {
		t.Fatal("the config's own WrapTransport was not applied")
	}
	if seen == nil {
		t.Fatal("client-go did not hand the wrapper its *http.Transport")
	}
	if seen.HTTP2 == nil || seen.HTTP2.MaxReceiveBufferPerStream != http2StreamReceiveBuffer {
		t.Errorf("HTTP2 config = %+v, want MaxReceiveBufferPerStream %d", seen.HTTP2, http2StreamReceiveBuffer)
	}
	if rt := LimitHTTP2StreamBuffer(nil)(http.DefaultTransport.(*http.Transport).Clone()); rt.(*http.Transport).HTTP2 == nil {
		t.Error("without a wrapper of its own, the transport was left alone")
	}
	if LimitHTTP2StreamBuffer(nil)(http.DefaultTransport); http.DefaultTransport.(*http.Transport).HTTP2 != nil {
		t.Error("http.DefaultTransport was changed")
	}
}

// refusingServer is an HTTP server on a loopback port that refuses
// connections until its listener is opened: the API server during an
// outage, then back.
type refusingServer struct {
	addr  string
	srv   *httptest.Server
	dials atomic.Int32
}

// newRefusingServer reserves a free port and does not listen on it yet.
func newRefusingServer(t *testing.T, handler http.Handler) *refusingServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &refusingServer{addr: addr, srv: httptest.NewUnstartedServer(handler)}
	t.Cleanup(s.srv.Close)
	return s
}

// open starts listening, so that the next connection is accepted.
func (s *refusingServer) open(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	s.srv.Listener = l
	s.srv.Start()
}

// transport returns a plain transport that counts its dials and, before
// dial number openAt, opens the server.
func (s *refusingServer) transport(t *testing.T, openAt int32) *http.Transport {
	dialer := &net.Dialer{}
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if s.dials.Add(1) == openAt {
			s.open(t)
		}
		return dialer.DialContext(ctx, network, addr)
	}}
}

// TestWaitForServer: a request whose connection is refused is sent again,
// body and all, once the server accepts connections; a request whose body
// cannot be replayed gets the refusal, and one whose context ends first
// returns.
func TestWaitForServer(t *testing.T) {
	t.Run("replays until accepted", func(t *testing.T) {
		var got []string
		s := newRefusingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got = append(got, r.Method+" "+string(b))
		}))
		rt := &waitForServer{next: s.transport(t, 4), poll: time.Millisecond}
		req, _ := http.NewRequest(http.MethodPatch, "http://"+s.addr+"/x", strings.NewReader(`{"a":1}`))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("the request failed: %v", err)
		}
		resp.Body.Close()
		if n := s.dials.Load(); n != 4 {
			t.Errorf("dialled %d times, want 4 (3 refused)", n)
		}
		if len(got) != 1 || got[0] != `PATCH {"a":1}` {
			t.Errorf("the server received %q, want the PATCH with its body once", got)
		}
	})
	t.Run("body that cannot be replayed", func(t *testing.T) {
		s := newRefusingServer(t, http.NotFoundHandler())
		rt := &waitForServer{next: s.transport(t, 0), poll: time.Millisecond}
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/x", io.NopCloser(strings.NewReader("x")))
		if _, err := rt.RoundTrip(req); !utilnet.IsConnectionRefused(err) {
			t.Fatalf("err = %v, want the refusal", err)
		}
		if n := s.dials.Load(); n != 1 {
			t.Errorf("dialled %d times, want 1", n)
		}
	})
	t.Run("context ends first", func(t *testing.T) {
		s := newRefusingServer(t, http.NotFoundHandler())
		rt := &waitForServer{next: s.transport(t, 0), poll: time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/x", nil)
		go func() {
			for s.dials.Load() < 3 {
				runtime.Gosched()
			}
			cancel()
		}()
		// It ends with the refusal, or with the cancellation if that came
		// in the middle of a dial; never with a response.
		if _, err := rt.RoundTrip(req); !utilnet.IsConnectionRefused(err) && !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the refusal or the cancellation", err)
		}
	})
}
