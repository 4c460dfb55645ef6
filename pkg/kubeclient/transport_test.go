package kubeclient

import (
	"net/http"
	"testing"

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
