package preflight

import "k8s.io/apimachinery/pkg/runtime/schema"

// ControllerSettings are the settings of a reroll controller that decide
// what it needs of the API server and of RBAC.
type ControllerSettings struct {
	// PendingChangesSecret is the Secret, in ControllerNamespace, that
	// keeps changes made before their consumers were adopted; empty in a
	// dry run.
	PendingChangesSecret string
	// Namespaces are the namespaces watched; none means all.
	Namespaces []string
	// SkipNamespaceObjects controllers do not read the watched Namespaces
	// (a Role in each is all they have).
	SkipNamespaceObjects bool
	// BuiltinResources are the built-in workload resources watched.
	BuiltinResources []schema.GroupVersionResource
	// ExtraKinds are the custom workload kinds watched.
	ExtraKinds []schema.GroupResource
	// DryRun controllers never patch workloads.
	DryRun bool
	// ControllerNamespace and HashKeySecret name the hash key's Secret.
	ControllerNamespace string
	HashKeySecret       string
	// LeaderElect controllers need the Lease in LeaseNamespace.
	LeaderElect    bool
	LeaseNamespace string
	// RecreatesJobs controllers (--kinds with jobs) delete and create Jobs,
	// and keep each Job being re-created in a Secret of their namespace.
	RecreatesJobs bool
	// IgnoreConfigMaps and IgnoreSecrets controllers (--resources-to-ignore)
	// never watch that type.
	IgnoreConfigMaps, IgnoreSecrets bool
	// SecretsStoreCSI controllers read the Secrets Store CSI driver's
	// SecretProviderClassPodStatuses.
	SecretsStoreCSI bool
	// WatchesPods controllers (a --bake-time) list and watch the pods of the
	// workloads whose bake is not over.
	WatchesPods bool
}

// ControllerRequirements lists what a controller with settings s needs of
// the API server and of RBAC: the same list the manifests and the Helm
// chart grant, and the preflight check verifies.
//
// Long: one list, in the order the chart's RBAC grants it, so that the two
// read side by side.
func ControllerRequirements(s ControllerSettings) Requirements {
	var req Requirements
	access := func(group, resource string, namespaces []string, verbs ...string) {
		for _, ns := range namespaces {
			for _, v := range verbs {
				req.Access = append(req.Access, Access{Verb: v, Group: group, Resource: resource, Namespace: ns})
			}
		}
	}
	watched := s.Namespaces
	if len(watched) == 0 {
		watched = []string{""}
	}
	own := []string{s.ControllerNamespace}
	need := func(group, version, resource string, verbs ...string) {
		req.Resources = append(req.Resources, schema.GroupVersionResource{Group: group, Version: version, Resource: resource})
		access(group, resource, watched, verbs...)
	}
	workloadVerbs := []string{"list", "watch", "patch"}
	if s.DryRun {
		workloadVerbs = workloadVerbs[:2]
	}
	if !s.IgnoreConfigMaps {
		need("", "v1", "configmaps", "list", "watch")
	}
	if !s.IgnoreSecrets {
		need("", "v1", "secrets", "list", "watch")
	}
	for _, r := range s.BuiltinResources {
		need(r.Group, r.Version, r.Resource, workloadVerbs...)
	}
	need("events.k8s.io", "v1", "events", "create", "patch")
	if !s.SkipNamespaceObjects {
		req.Resources = append(req.Resources, schema.GroupVersionResource{Version: "v1", Resource: "namespaces"})
		req.Access = append(req.Access, NamespaceAccess(s.Namespaces)...)
	}
	for _, gr := range s.ExtraKinds {
		// Its CRD may come later: check RBAC now, discovery at runtime.
		access(gr.Group, gr.Resource, watched, workloadVerbs...)
	}
	req.Access = append(req.Access, Access{Verb: "get", Resource: "secrets", Namespace: s.ControllerNamespace, Name: s.HashKeySecret})
	if !s.DryRun {
		// The decision settings are published on it, for kubectl reroll.
		req.Access = append(req.Access, Access{Verb: "patch", Resource: "secrets", Namespace: s.ControllerNamespace, Name: s.HashKeySecret})
	}
	if s.PendingChangesSecret != "" {
		for _, v := range []string{"get", "update"} {
			req.Access = append(req.Access, Access{Verb: v, Resource: "secrets", Namespace: s.ControllerNamespace, Name: s.PendingChangesSecret})
		}
	}
	if s.WatchesPods {
		access("", "pods", watched, "list", "watch")
	}
	if s.SecretsStoreCSI {
		// Its CRD may come later: check RBAC now, discovery at runtime.
		access("secrets-store.csi.x-k8s.io", "secretproviderclasspodstatuses", watched, "list", "watch")
	}
	if s.RecreatesJobs && !s.DryRun {
		access("batch", "jobs", watched, "create", "delete")
		access("", "secrets", own, "list", "create", "update", "delete")
	}
	if s.LeaderElect {
		req.Resources = append(req.Resources, schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"})
		access("coordination.k8s.io", "leases", []string{s.LeaseNamespace}, "get", "create", "update")
	}
	return req
}

// NamespaceAccess is what reading the watched Namespaces takes: listing
// and watching them all, or each watched one by name (Namespaces are
// cluster-scoped, so only a ClusterRole grants it).
func NamespaceAccess(watched []string) []Access {
	if len(watched) == 0 {
		watched = []string{""}
	}
	var access []Access
	for _, name := range watched {
		for _, v := range []string{"list", "watch"} {
			access = append(access, Access{Verb: v, Resource: "namespaces", Name: name})
		}
	}
	return access
}
