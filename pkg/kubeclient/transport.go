package kubeclient

import (
	"net/http"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// http2StreamReceiveBuffer is the HTTP/2 flow-control window reroll grants
// each stream: how much a watch may send ahead of what reroll has decoded.
// The transport's default is 4 MiB per stream. While the informers stream
// thousands of large ConfigMaps and Secrets, the API server fills it, and
// the benchmarks found 5 MB of reroll's start-up heap in those buffers. One
// MiB still allows 1 GB/s at a 1 ms round trip; a quarter of that slowed
// the initial sync measurably.
const http2StreamReceiveBuffer = 1 << 20

// LimitHTTP2StreamBuffer returns a rest.Config WrapTransport that sets
// http2StreamReceiveBuffer on client-go's HTTP transport, then applies next
// (the config's own wrapper, if any). The HTTP/2 transport reads the setting
// when it opens a connection, and client-go wraps before the first request.
// The process-wide http.DefaultTransport, which client-go uses for plain
// HTTP, is left alone.
func LimitHTTP2StreamBuffer(next transport.WrapperFunc) transport.WrapperFunc {
	return func(rt http.RoundTripper) http.RoundTripper {
		if t := innermostTransport(rt); t != nil && t != http.DefaultTransport && t.HTTP2 == nil {
			t.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: http2StreamReceiveBuffer}
		}
		if next != nil {
			return next(rt)
		}
		return rt
	}
}

// innermostTransport unwraps client-go's round-tripper wrappers down to the
// *http.Transport, or returns nil if there is none.
func innermostTransport(rt http.RoundTripper) *http.Transport {
	for {
		switch t := rt.(type) {
		case *http.Transport:
			return t
		case utilnet.RoundTripperWrapper:
			rt = t.WrappedRoundTripper()
		default:
			return nil
		}
	}
}

// serverReturnPoll is how often a request waiting for the API server to
// come back tries to connect again.
const serverReturnPoll = 250 * time.Millisecond

// WaitForServer returns cfg whose requests, when the API server refuses the
// connection (it is down or restarting), try again every serverReturnPoll
// until it accepts one or the request is cancelled.
//
// Why: a reflector that cannot connect backs off exponentially, to 30s
// with as much again of jitter, so after an outage the informers came back
// 10 to 23s after the API server did (20.3s in the outage benchmark, for a
// 20s outage), and every change made in between waited for them; and each
// failed write grew its key's backoff in the queue. Waiting in the transport instead, a request goes out within
// serverReturnPoll of the server's return, and neither the reflectors nor
// the queue see the refusals that grow their backoff. A refused connection
// never reached the server, so sending the request again is safe for any
// method; one whose body cannot be replayed is not retried.
//
// A write that waited lands when the server is back. With leader election
// that is still safe: nobody can take the Lease while the API server is
// down, and a leader whose renew deadline passes exits, waiting writes and
// all. Leader election itself must not wait (its release would outlast the
// renew deadline), so it uses a client without this.
func WaitForServer(cfg *rest.Config) *rest.Config {
	waiting := rest.CopyConfig(cfg)
	waiting.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &waitForServer{next: rt, poll: serverReturnPoll}
	})
	return waiting
}

// waitForServer retries requests whose connection was refused; see
// WaitForServer.
type waitForServer struct {
	next http.RoundTripper
	poll time.Duration
}

// RoundTrip sends req, and again every w.poll while the connection is
// refused, until the request's context ends; then it returns the refusal.
func (w *waitForServer) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for {
		resp, err := w.next.RoundTrip(req)
		if err == nil || !replayable || !utilnet.IsConnectionRefused(err) {
			return resp, err
		}
		timer := time.NewTimer(w.poll)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, err
		case <-timer.C:
		}
		if req.GetBody != nil {
			body, bodyErr := req.GetBody()
			if bodyErr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// WrappedRoundTripper returns the round-tripper w wraps, for client-go's
// transport introspection.
func (w *waitForServer) WrappedRoundTripper() http.RoundTripper { return w.next }
