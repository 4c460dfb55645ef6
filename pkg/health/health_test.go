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

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
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

// TestAPIServerCheck: the check passes while the API server's /readyz
// answers ok, and fails, saying why, when it answers an error, is too slow
// or is not there at all.
func TestAPIServerCheck(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		closed  bool
		wantErr string
	}{
		{name: "ready", handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }},
		{name: "not ready", handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "[-]etcd failed", http.StatusInternalServerError)
		}, wantErr: "the API server is not ready"},
		{name: "too slow", handler: func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, wantErr: "the API server is not ready"},
		{name: "gone", handler: func(http.ResponseWriter, *http.Request) {}, closed: true, wantErr: "the API server is not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var paths []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				paths = append(paths, r.URL.Path)
				tt.handler(w, r)
			}))
			defer srv.Close()
			rc, err := rest.RESTClientFor(&rest.Config{Host: srv.URL, QPS: -1, ContentConfig: rest.ContentConfig{
				GroupVersion: &schema.GroupVersion{}, NegotiatedSerializer: scheme.Codecs.WithoutConversion()}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.closed {
				srv.Close()
			}
			err = APIServer(rc, 200*time.Millisecond)(httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("check failed: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("check error = %v, want one containing %q", err, tt.wantErr)
			}
			srv.Close() // waits for the handler, which wrote paths
			if !tt.closed && (len(paths) != 1 || paths[0] != "/readyz") {
				t.Errorf("the check asked %v, want /readyz once", paths)
			}
		})
	}
}
