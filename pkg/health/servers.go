package health

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"k8s.io/klog/v2"
)

// Disabled is the address that disables a server.
const Disabled = "0"

// Servers say what a controller serves, and where.
type Servers struct {
	// MetricsAddress serves /metrics (and pprof with Profiling), and
	// ProbeAddress /healthz and /readyz; equal addresses serve all on one
	// server, and Disabled serves nothing.
	MetricsAddress, ProbeAddress string
	Metrics                      http.Handler
	Profiling                    bool
	// Live and Ready are the probes' checks.
	Live, Ready []Check
}

// Start binds the addresses of s, now, so that a taken port fails start-up,
// and serves until ctx is done. The returned wait blocks until every
// server has stopped.
func Start(ctx context.Context, s Servers) (wait func(), err error) {
	endpoints := map[string]*Endpoints{}
	if s.MetricsAddress != Disabled {
		endpoints[s.MetricsAddress] = &Endpoints{Metrics: s.Metrics, Profiling: s.Profiling}
	}
	if s.ProbeAddress != Disabled {
		e, ok := endpoints[s.ProbeAddress]
		if !ok {
			e = &Endpoints{}
			endpoints[s.ProbeAddress] = e
		}
		e.Live, e.Ready = s.Live, s.Ready
	}
	var wg sync.WaitGroup
	for addr, e := range endpoints {
		l, err := Listen(addr)
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			if err := Serve(ctx, l, NewMux(*e)); err != nil {
				klog.FromContext(ctx).Error(err, "Server failed", "address", addr)
			}
		})
	}
	return wg.Wait, nil
}

// Synced returns a readiness check that fails until synced reports true:
// the informers' caches hold the cluster.
func Synced(synced func() bool) Check {
	return func(*http.Request) error {
		if !synced() {
			return errors.New("informer caches are not synced yet")
		}
		return nil
	}
}
