package leader

import (
	"context"
	"crypto/rand"
	"os"

	"github.com/reroll/reroll/pkg/metrics"
)

// RunWorkers runs work until ctx is done: at once when elect is false,
// else only while this replica holds the Lease of cfg (see Run), with an
// identity from $POD_NAME or the hostname (see Identity). It keeps the
// gauge reroll_leader, on reg, at 1 while work runs as the leader.
func RunWorkers(ctx context.Context, elect bool, cfg Config, reg *metrics.Registry, work func(ctx context.Context) error) error {
	gauge := reg.NewGaugeVec("reroll_leader", "1 while this replica runs the workers (leads), else 0.").WithLabelValues()
	if !elect {
		gauge.Set(1)
		return work(ctx)
	}
	hostname, _ := os.Hostname()
	identity, err := Identity(os.Getenv("POD_NAME"), hostname, rand.Text()[:8])
	if err != nil {
		return err
	}
	cfg.Identity = identity
	cfg.OnLeading = func(leading bool) {
		if leading {
			gauge.Set(1)
		} else {
			gauge.Set(0)
		}
	}
	return Run(ctx, cfg, work)
}
