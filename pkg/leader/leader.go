// Package leader runs work only while this process holds a Lease, and
// hands the Lease over cleanly on shutdown.
//
// The order on SIGTERM matters: stop taking work, finish in-flight work,
// and only then release the Lease, so that the next leader never overlaps
// with our last writes. Losing the Lease instead must stop writing at once,
// which only exiting the process guarantees.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// Config configures leader election.
type Config struct {
	// Client reads and writes the Lease.
	Client kubernetes.Interface
	// Namespace and Name name the coordination.k8s.io Lease.
	Namespace, Name string
	// Identity is this replica's unique name (the pod name).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are the usual timings
	// (15s/10s/2s in Kubernetes' own controllers).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// WatchDog, if set, reports in health checks whether the Lease is being
	// renewed while we lead.
	WatchDog *leaderelection.HealthzAdaptor
	// OnLeading is told when this replica starts (true) and stops (false)
	// leading, for the leader status metric. Optional.
	OnLeading func(bool)
	// OnLost is called when the Lease is lost while the process is not
	// shutting down. It must stop every write at once; the default exits
	// the process with status 1.
	OnLost func()
}

// Run campaigns for the Lease until shutdown is done and runs work while it
// leads. When shutdown ends, a leader cancels work's context, waits for
// work to return, releases the Lease and returns; a non-leader stops
// campaigning and returns. work's error, if any, is returned.
//
// Long: the elector's callbacks share the leading and work-error state
// under one lock, and the hand-off is only correct in their order (work
// returns, then the Lease is released); they read best side by side.
func Run(shutdown context.Context, cfg Config, work func(ctx context.Context) error) error {
	logger := klog.FromContext(shutdown)
	if cfg.OnLost == nil {
		cfg.OnLost = func() { klog.FlushAndExit(klog.ExitFlushTimeout, 1) }
	}
	if cfg.OnLeading == nil {
		cfg.OnLeading = func(bool) {}
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
		Client:     cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}

	// The elector's context outlives shutdown: with ReleaseOnCancel, the
	// Lease is released when it ends, which must come after work returned.
	electorCtx, stopElector := context.WithCancel(klog.NewContext(context.WithoutCancel(shutdown), logger))
	defer stopElector()
	var mu sync.Mutex
	leading := false
	var workErr error
	stopCampaigning := context.AfterFunc(shutdown, func() {
		mu.Lock()
		defer mu.Unlock()
		if !leading {
			stopElector()
		} // a leader stops the elector itself once work has returned
	})
	defer stopCampaigning()

	// le is set before the elector runs; the callbacks read it only then.
	var le *leaderelection.LeaderElector
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            cfg.Name,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        cfg.WatchDog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaseCtx context.Context) {
				mu.Lock()
				if shutdown.Err() != nil {
					mu.Unlock()
					stopElector()
					return
				}
				leading = true
				mu.Unlock()
				logger.Info("Started leading", "lease", klog.KRef(cfg.Namespace, cfg.Name), "identity", cfg.Identity)
				cfg.OnLeading(true)
				// work stops when the Lease is lost (leaseCtx) or on shutdown;
				// until then, StillLeading tells it whether a renewal saw
				// another holder.
				workCtx, cancel := context.WithCancel(context.WithValue(leaseCtx, electorKey{}, le))
				defer cancel()
				defer context.AfterFunc(shutdown, cancel)()
				go reportSuperseded(workCtx, le, cfg, logger)
				err := work(workCtx)
				mu.Lock()
				workErr = err
				mu.Unlock()
				stopElector() // releases the Lease, now that work is done
			},
			OnStoppedLeading: func() {
				cfg.OnLeading(false)
				mu.Lock()
				wasLeading, err := leading, workErr
				mu.Unlock()
				if wasLeading && shutdown.Err() == nil && err == nil {
					logger.Info("Lost the lease: stopping at once", "lease", klog.KRef(cfg.Namespace, cfg.Name))
					cfg.OnLost()
				}
			},
			OnNewLeader: func(identity string) {
				logger.Info("Leader is", "identity", identity)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	if cfg.WatchDog != nil {
		cfg.WatchDog.SetLeaderElection(le)
	}
	le.Run(electorCtx)
	mu.Lock()
	defer mu.Unlock()
	return workErr
}

// electorKey is the context key of the elector work runs under.
type electorKey struct{}

// StillLeading reports whether the work running under ctx (a context Run
// gave it, or one derived from it) still leads: false as soon as a renewal
// finds the Lease held by another identity, without waiting for the renew
// deadline that ends the work. Outside leader election it is always true.
// Writers check it right before writing, so that a Lease taken by force
// stops their writes within a retry period.
func StillLeading(ctx context.Context) bool {
	le, ok := ctx.Value(electorKey{}).(*leaderelection.LeaderElector)
	return !ok || le.IsLeader()
}

// reportSuperseded logs once, and tells OnLeading, when a renewal of the
// Lease finds another holder while work still runs: from then on writes
// stop (StillLeading is false), though the process exits only at the renew
// deadline. It checks every retry period until ctx ends.
func reportSuperseded(ctx context.Context, le *leaderelection.LeaderElector, cfg Config, logger klog.Logger) {
	tick := time.NewTicker(cfg.RetryPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !le.IsLeader() {
				logger.Info("A renewal found another holder of the Lease: writes stop", "lease", klog.KRef(cfg.Namespace, cfg.Name), "holder", le.GetLeader())
				cfg.OnLeading(false)
				return
			}
		}
	}
}

// ErrNoIdentity is returned by Identity when no name can be found.
var ErrNoIdentity = errors.New("no leader election identity: set POD_NAME")

// Identity returns a unique replica name: podName (from the downward API)
// if set, else the hostname with a random suffix, so that two processes on
// one host never share an identity.
func Identity(podName, hostname, suffix string) (string, error) {
	switch {
	case podName != "":
		return podName, nil
	case hostname != "":
		return hostname + "_" + suffix, nil
	}
	return "", ErrNoIdentity
}
