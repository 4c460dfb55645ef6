package health

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
)

// freeAddress returns a loopback address that was free a moment ago.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// status GETs url and returns its status code, or 0 when nothing answers.
func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// Equal addresses serve metrics and probes on one server; Disabled serves
// nothing; a taken address fails at once; the servers stop with ctx.
func TestStart(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m 1\n")) })
	ok := []Check{func(*http.Request) error { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	one := freeAddress(t)
	wait, err := Start(ctx, Servers{MetricsAddress: one, ProbeAddress: one, Metrics: metrics, Live: ok, Ready: ok})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if code := status(t, "http://"+one+path); code != http.StatusOK {
			t.Errorf("%s on the shared address: %d", path, code)
		}
	}
	if _, err := Start(ctx, Servers{MetricsAddress: one, ProbeAddress: Disabled}); err == nil {
		t.Error("a taken address did not fail")
	}
	cancel()
	wait()
	if code := status(t, "http://"+one+"/healthz"); code != 0 {
		t.Errorf("served after ctx ended: %d", code)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	probes := freeAddress(t)
	wait, err = Start(ctx, Servers{MetricsAddress: Disabled, ProbeAddress: probes, Live: ok, Ready: ok})
	if err != nil {
		t.Fatal(err)
	}
	if code := status(t, "http://"+probes+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics with metrics disabled: %d", code)
	}
	cancel()
	wait()
}
