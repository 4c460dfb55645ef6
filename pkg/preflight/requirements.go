package preflight

import "k8s.io/apimachinery/pkg/runtime/schema"

// ControllerSettings are the settings of a reroll controller that decide
// what it needs of the API server and of RBAC.
type ControllerSettings struct {
	// Namespace is the one namespace watched; empty means all.
	Namespace string
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
}

// ControllerRequirements lists what a controller with settings s needs of
// the API server and of RBAC: the same list the manifests and the Helm
// chart grant, and the preflight check verifies.
func ControllerRequirements(s ControllerSettings) Requirements {
	var req Requirements
	access := func(group, resource, namespace string, verbs ...string) {
		for _, v := range verbs {
			req.Access = append(req.Access, Access{Verb: v, Group: group, Resource: resource, Namespace: namespace})
		}
	}
	need := func(group, version, resource string, verbs ...string) {
		req.Resources = append(req.Resources, schema.GroupVersionResource{Group: group, Version: version, Resource: resource})
		access(group, resource, s.Namespace, verbs...)
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
	// Namespaces are cluster-scoped: all of them, or the watched one by name.
	req.Resources = append(req.Resources, schema.GroupVersionResource{Version: "v1", Resource: "namespaces"})
	for _, v := range []string{"list", "watch"} {
		req.Access = append(req.Access, Access{Verb: v, Resource: "namespaces", Name: s.Namespace})
	}
	for _, gr := range s.ExtraKinds {
		// Its CRD may come later: check RBAC now, discovery at runtime.
		access(gr.Group, gr.Resource, s.Namespace, workloadVerbs...)
	}
	req.Access = append(req.Access, Access{Verb: "get", Resource: "secrets", Namespace: s.ControllerNamespace, Name: s.HashKeySecret})
	if s.SecretsStoreCSI {
		// Its CRD may come later: check RBAC now, discovery at runtime.
		access("secrets-store.csi.x-k8s.io", "secretproviderclasspodstatuses", s.Namespace, "list", "watch")
	}
	if s.RecreatesJobs && !s.DryRun {
		access("batch", "jobs", s.Namespace, "create", "delete")
		access("", "secrets", s.ControllerNamespace, "list", "create", "update", "delete")
	}
	if s.LeaderElect {
		req.Resources = append(req.Resources, schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"})
		access("coordination.k8s.io", "leases", s.LeaseNamespace, "get", "create", "update")
	}
	return req
}
