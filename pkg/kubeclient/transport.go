package kubeclient

import (
	"net/http"

	utilnet "k8s.io/apimachinery/pkg/util/net"
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
