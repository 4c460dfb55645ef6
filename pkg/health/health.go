// Package health serves reroll's HTTP endpoints: liveness and readiness
// probes, and optionally metrics and pprof, with a graceful shutdown.
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// Check returns nil when healthy, else why not.
type Check func(*http.Request) error

// APIServer returns a check that the API server answers its own /readyz
// within timeout. It fails while the API server, or etcd behind it, is out,
// so that /healthz reports an outage and passes again once it is over. rc
// should not be rate limited: a probe must not wait behind a fan-out's
// writes.
func APIServer(rc rest.Interface, timeout time.Duration) Check {
	return func(r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if err := rc.Get().AbsPath("/readyz").Do(ctx).Error(); err != nil {
			return fmt.Errorf("the API server is not ready: %w", err)
		}
		return nil
	}
}

// Endpoints says what one server serves.
type Endpoints struct {
	// Live checks back /healthz: the process works and is not wedged.
	Live []Check
	// Ready checks back /readyz: the caches are synced.
	Ready []Check
	// Metrics, if set, serves /metrics.
	Metrics http.Handler
	// Profiling serves Go's pprof under /debug/pprof/.
	Profiling bool
}

// NewMux returns a mux serving the endpoints. A probe answers 200 "ok", or
// 500 with the first failing check's message.
func NewMux(e Endpoints) *http.ServeMux {
	mux := http.NewServeMux()
	if e.Live != nil {
		mux.Handle("GET /healthz", probe(e.Live))
	}
	if e.Ready != nil {
		mux.Handle("GET /readyz", probe(e.Ready))
	}
	if e.Metrics != nil {
		mux.Handle("GET /metrics", e.Metrics)
	}
	if e.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// probe turns checks into a handler.
func probe(checks []Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, check := range checks {
			if err := check(r); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
}

// Listen binds addr now, so that a taken port fails start-up with a clear
// error instead of a log line later.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return l, nil
}

// Serve serves h on l until ctx is done, then shuts down gracefully.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	})
	defer stop()
	klog.FromContext(ctx).Info("Serving", "address", l.Addr().String())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
