// Package preflight checks, before any informer starts, that the API server
// is ready, recent enough, serves what reroll needs, and lets reroll do what
// it needs. It fails fast with one message listing every problem, instead of
// informers retrying Forbidden forever.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// MinMinorVersion is the oldest Kubernetes 1.x minor version reroll
// supports: older ones are out of upstream support.
const MinMinorVersion = 30

// Access is one permission reroll needs.
type Access struct {
	Verb      string
	Group     string
	Resource  string
	Namespace string // empty: all namespaces (or cluster-scoped)
	Name      string // empty: any object
}

// String says it like RBAC does: "list secrets in namespace x".
func (a Access) String() string {
	s := a.Verb + " " + schema.GroupResource{Group: a.Group, Resource: a.Resource}.String()
	if a.Name != "" {
		s += " " + a.Name
	}
	if a.Namespace != "" {
		return s + " in namespace " + a.Namespace
	}
	return s + " in all namespaces"
}

// Requirements are what the configured controller needs.
type Requirements struct {
	// Resources must be served (by group/version).
	Resources []schema.GroupVersionResource
	// Access must be granted.
	Access []Access
}

// Check runs the checks and returns one error listing every problem found.
func Check(ctx context.Context, client kubernetes.Interface, req Requirements) error {
	logger := klog.FromContext(ctx)
	disc := client.Discovery()
	if body, err := disc.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("preflight: the API server is not ready: %w (%s)", err, strings.TrimSpace(string(body)))
	}
	v, err := disc.ServerVersionWithContext(ctx)
	if err != nil {
		return fmt.Errorf("preflight: reading the server version: %w", err)
	}
	minor, err := strconv.Atoi(strings.TrimRight(v.Minor, "+"))
	if err != nil || v.Major != "1" || minor < MinMinorVersion {
		return fmt.Errorf("preflight: Kubernetes %s is not supported; reroll needs 1.%d or newer", v.GitVersion, MinMinorVersion)
	}
	logger.Info("Preflight: API server ready", "version", v.GitVersion)

	var problems []string
	served := map[string][]string{}
	for _, gvr := range req.Resources {
		gv := gvr.GroupVersion().String()
		names, ok := served[gv]
		if !ok {
			list, err := disc.ServerResourcesForGroupVersionWithContext(ctx, gv)
			if err != nil {
				problems = append(problems, fmt.Sprintf("the API server does not serve %s: %v", gv, err))
				served[gv] = nil
				continue
			}
			for _, r := range list.APIResources {
				names = append(names, r.Name)
			}
			served[gv] = names
		}
		if served[gv] != nil && !slices.Contains(names, gvr.Resource) {
			problems = append(problems, fmt.Sprintf("the API server does not serve %s in %s", gvr.Resource, gv))
		}
	}

	denied, err := Denied(ctx, client, req.Access)
	if err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	var missing []string
	for _, a := range denied {
		missing = append(missing, a.String())
	}
	if len(missing) > 0 {
		problems = append(problems, "reroll's identity lacks permission to: "+strings.Join(missing, "; "))
	}
	if len(problems) > 0 {
		return errors.New("preflight failed:\n  - " + strings.Join(problems, "\n  - "))
	}
	logger.Info("Preflight: permissions and resources are in place", "checked", len(req.Access))
	return nil
}

// Denied returns the accesses of want that reroll's identity is not
// granted, asking the API server with SelfSubjectAccessReviews.
func Denied(ctx context.Context, client kubernetes.Interface, want []Access) ([]Access, error) {
	var denied []Access
	for _, a := range want {
		review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.Verb, Group: a.Group, Resource: a.Resource, Namespace: a.Namespace, Name: a.Name}},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("checking permissions with a SelfSubjectAccessReview: %w", err)
		}
		if !review.Status.Allowed {
			denied = append(denied, a)
		}
	}
	return denied, nil
}
