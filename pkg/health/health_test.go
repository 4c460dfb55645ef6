package health

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbes(t *testing.T) {
	ready := false
	synced := func(*http.Request) error {
		if !ready {
			return errors.New("caches not synced")
		}
		return nil
	}
	mux := NewMux(Endpoints{
		Live:    []Check{func(*http.Request) error { return nil }},
		Ready:   []Check{func(*http.Request) error { return nil }, synced},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m 1\n")) }),
	})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	if code, body := get("/healthz"); code != 200 || body != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 500 || body != "caches not synced" {
		t.Errorf("/readyz before sync = %d %q", code, body)
	}
	ready = true
	if code, body := get("/readyz"); code != 200 || body != "ok" {
		t.Errorf("/readyz after sync = %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || body != "m 1" {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("pprof served without Profiling: %d", code)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, NewMux(Endpoints{Live: []Check{}, Profiling: true})) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine") {
		t.Errorf("pprof index = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := Listen(l.Addr().String()); err != nil {
		t.Errorf("port not released: %v", err)
	}
}
