// Package kubeclient builds reroll's API clients: where the configuration
// comes from (in cluster, or a kubeconfig), how the transport is tuned for a
// controller that watches every ConfigMap and Secret, and a fail-fast check
// that the API server can be reached at all.
package kubeclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// Config returns the client configuration: the in-cluster one when neither
// master nor kubeconfig is given and the process runs in a pod, else the
// kubeconfig (the kubeconfig path, or $KUBECONFIG, or ~/.kube/config), with
// master overriding its server.
func Config(master, kubeconfig string) (*rest.Config, error) {
	if master == "" && kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			return cfg, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	overrides := &clientcmd.ConfigOverrides{}
	overrides.ClusterInfo.Server = master
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errors.New("no cluster to connect to: not running in a pod, and no kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)")
	}
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	return cfg, nil
}

// Tune sets what reroll's clients share on top of cfg: its rate limit,
// user agent, no compression and a smaller HTTP/2 window (see
// LimitHTTP2StreamBuffer). It returns a copy.
func Tune(cfg *rest.Config, qps float32, burst int, userAgent string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	// Config values are often incompressible (keys, certificates), and
	// gunzipping the initial list cost a fifth of start-up CPU in the
	// benchmarks; the API server is usually one network hop away.
	cfg.DisableCompression = true
	cfg.WrapTransport = LimitHTTP2StreamBuffer(cfg.WrapTransport)
	return rest.AddUserAgent(cfg, userAgent)
}

// EventsConfig returns the configuration of the client that sends Events:
// the same as cfg with its own, smaller rate limit, so that a fan-out of
// rolls spends the main budget on the rolls themselves; Events trail
// behind.
func EventsConfig(cfg *rest.Config) *rest.Config {
	events := rest.CopyConfig(cfg)
	events.QPS, events.Burst = max(cfg.QPS/4, 5), max(cfg.Burst/4, 10)
	return events
}

// ProbeConfig returns the config of the client that health probes use to
// ask whether the API server is ready: the same as cfg without a rate
// limit, so that a probe never queues behind a fan-out, and with a
// timeout, so that a probe never hangs.
func ProbeConfig(cfg *rest.Config, timeout time.Duration) *rest.Config {
	probe := rest.CopyConfig(cfg)
	probe.QPS, probe.Burst, probe.RateLimiter = -1, 0, nil
	probe.Timeout = timeout
	return probe
}

// CheckServer fails fast, with a clear message, when the API server cannot
// be reached, instead of letting informers retry forever.
func CheckServer(ctx context.Context, client kubernetes.Interface, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := client.Discovery().ServerVersionWithContext(ctx)
	if err != nil {
		return fmt.Errorf("cannot reach the Kubernetes API server at %s: %w", host, err)
	}
	klog.FromContext(ctx).Info("Connected", "server", host, "version", v.GitVersion)
	return nil
}
