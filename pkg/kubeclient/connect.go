package kubeclient

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ConnectOptions say where and how a controller connects.
type ConnectOptions struct {
	// Master and Kubeconfig are --master and --kubeconfig (see Config).
	Master, Kubeconfig string
	// QPS and Burst are the main client's rate limit.
	QPS   float32
	Burst int
	// UserAgent names the controller in the API server's logs.
	UserAgent string
	// ProbeTimeout bounds a health probe's question to the API server.
	ProbeTimeout time.Duration
}

// Clients are a controller's connections to the API server.
type Clients struct {
	// Config is the main client's configuration, which waits out an API
	// server outage (WaitForServer); Client and Dynamic use it.
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Events sends Events under its own rate limit (EventsConfig).
	Events       kubernetes.Interface
	EventsConfig *rest.Config
	// Probe asks the API server whether it is ready, for /healthz, without
	// a rate limit and with a timeout (ProbeConfig).
	Probe rest.Interface
	// FailFast does not wait for a refusing API server: for the start-up
	// check, and for leader election, whose renewals and release must end
	// within their deadlines.
	FailFast kubernetes.Interface
}

// Connect builds the clients and checks that the API server answers.
func Connect(ctx context.Context, o ConnectOptions) (Clients, error) {
	base, err := Config(o.Master, o.Kubeconfig)
	if err != nil {
		return Clients{}, err
	}
	cfg := Tune(base, o.QPS, o.Burst, o.UserAgent)
	// The informers and workers wait out an API server outage (see
	// WaitForServer); Events, probes and the start-up check fail fast.
	c := Clients{Config: WaitForServer(cfg), EventsConfig: EventsConfig(cfg)}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return Clients{}, fmt.Errorf("building the client: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.Config); err != nil {
		return Clients{}, fmt.Errorf("building the dynamic client: %w", err)
	}
	if c.Events, err = kubernetes.NewForConfig(c.EventsConfig); err != nil {
		return Clients{}, fmt.Errorf("building the events client: %w", err)
	}
	probe, err := kubernetes.NewForConfig(ProbeConfig(cfg, o.ProbeTimeout))
	if err != nil {
		return Clients{}, fmt.Errorf("building the probe client: %w", err)
	}
	c.Probe = probe.Discovery().RESTClient()
	if c.FailFast, err = kubernetes.NewForConfig(cfg); err != nil {
		return Clients{}, fmt.Errorf("building the client: %w", err)
	}
	return c, CheckServer(ctx, c.FailFast, cfg.Host)
}

// serviceAccountNamespaceFile holds the pod's namespace when in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// ControllerNamespace returns the controller's own namespace:
// $POD_NAMESPACE, else the in-cluster namespace file, else fallback (the
// --controller-namespace flag).
func ControllerNamespace(fallback string) string {
	return controllerNamespace(os.Getenv("POD_NAMESPACE"), serviceAccountNamespaceFile, fallback)
}

// controllerNamespace is ControllerNamespace with its sources given.
func controllerNamespace(podNamespace, namespaceFile, fallback string) string {
	if podNamespace != "" {
		return podNamespace
	}
	if b, err := os.ReadFile(namespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return fallback
}
