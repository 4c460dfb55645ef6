package preflight

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/plan"
)

// What a controller needs follows its settings: dry runs never patch, extra
// kinds add access (their CRDs may come later), leader election adds the
// Lease.
func TestControllerRequirements(t *testing.T) {
	access := func(r Requirements) []string {
		var out []string
		for _, a := range r.Access {
			out = append(out, a.String())
		}
		return out
	}
	base := ControllerSettings{Namespaces: []string{"apps"}, ControllerNamespace: "reroll-system", HashKeySecret: "key",
		BuiltinResources: []schema.GroupVersionResource{{Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "batch", Version: "v1", Resource: "cronjobs"}}}
	got := ControllerRequirements(base)
	want := []string{
		"list configmaps in namespace apps", "watch configmaps in namespace apps",
		"list secrets in namespace apps", "watch secrets in namespace apps",
		"list deployments.apps in namespace apps", "watch deployments.apps in namespace apps", "patch deployments.apps in namespace apps",
		"list cronjobs.batch in namespace apps", "watch cronjobs.batch in namespace apps", "patch cronjobs.batch in namespace apps",
		"create events.events.k8s.io in namespace apps", "patch events.events.k8s.io in namespace apps",
		"list namespaces apps in all namespaces", "watch namespaces apps in all namespaces",
		"get secrets key in namespace reroll-system", "patch secrets key in namespace reroll-system",
	}
	if !slices.Equal(access(got), want) {
		t.Errorf("access:\n got  %q\n want %q", access(got), want)
	}
	if len(got.Resources) != 6 {
		t.Errorf("resources = %v", got.Resources)
	}

	dry := base
	dry.DryRun = true
	for _, a := range access(ControllerRequirements(dry)) {
		if strings.HasPrefix(a, "patch deployments") || strings.HasPrefix(a, "patch secrets") {
			t.Errorf("a dry run needs %q", a)
		}
	}

	full := base
	full.ExtraKinds = []schema.GroupResource{{Group: "argoproj.io", Resource: "rollouts"}}
	full.LeaderElect, full.LeaseNamespace = true, "reroll-system"
	full.PendingChangesSecret = "pending"
	r := ControllerRequirements(full)
	for _, w := range []string{"patch rollouts.argoproj.io in namespace apps", "update leases.coordination.k8s.io in namespace reroll-system",
		"get secrets pending in namespace reroll-system", "update secrets pending in namespace reroll-system"} {
		if !slices.Contains(access(r), w) {
			t.Errorf("missing %q in %q", w, access(r))
		}
	}
	if !slices.Contains(r.Resources, schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}) ||
		slices.ContainsFunc(r.Resources, func(g schema.GroupVersionResource) bool { return g.Group == "argoproj.io" }) {
		t.Errorf("resources = %v: want leases, and no extra kind (discovered at run time)", r.Resources)
	}
}

// Re-creating Jobs needs create and delete on Jobs, and the Secrets of
// reroll's namespace where a Job being re-created waits; a dry run needs
// neither.
func TestControllerRequirementsJobs(t *testing.T) {
	s := ControllerSettings{Namespaces: []string{"apps"}, ControllerNamespace: "reroll-system", HashKeySecret: "key", RecreatesJobs: true,
		BuiltinResources: []schema.GroupVersionResource{{Group: "batch", Version: "v1", Resource: "jobs"}}}
	var got []string
	for _, a := range ControllerRequirements(s).Access {
		got = append(got, a.String())
	}
	for _, want := range []string{"create jobs.batch in namespace apps", "delete jobs.batch in namespace apps",
		"list secrets in namespace reroll-system", "update secrets in namespace reroll-system", "delete secrets in namespace reroll-system"} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	s.DryRun = true
	for _, a := range ControllerRequirements(s).Access {
		if a.Verb == "create" && a.Resource == "jobs" {
			t.Errorf("a dry run needs %s", a)
		}
	}
}

// The Secrets Store CSI driver's statuses are read, never written.
func TestControllerRequirementsSecretsStoreCSI(t *testing.T) {
	s := ControllerSettings{Namespaces: []string{"apps"}, ControllerNamespace: "reroll-system", HashKeySecret: "key", SecretsStoreCSI: true}
	var got []string
	for _, a := range ControllerRequirements(s).Access {
		if a.Resource == "secretproviderclasspodstatuses" {
			got = append(got, a.String())
		}
	}
	want := []string{"list secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io in namespace apps",
		"watch secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io in namespace apps"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Several namespaces with Roles only (SkipNamespaceObjects): every
// namespaced permission is asked in each watched namespace, and nothing
// cluster-scoped is asked, so no ClusterRole is needed.
func TestControllerRequirementsSeveralNamespacesRolesOnly(t *testing.T) {
	s := ControllerSettings{Namespaces: []string{"a", "b"}, SkipNamespaceObjects: true, ControllerNamespace: "reroll-system", HashKeySecret: "key",
		BuiltinResources: []schema.GroupVersionResource{{Group: "apps", Version: "v1", Resource: "deployments"}}}
	perNamespace := map[string]int{}
	for _, a := range ControllerRequirements(s).Access {
		if a.Namespace == "" {
			t.Errorf("%s: cluster-wide, needs a ClusterRole", a)
		}
		perNamespace[a.Namespace]++
	}
	// list, watch ConfigMaps and Secrets; list, watch, patch Deployments;
	// create, patch Events.
	if perNamespace["a"] != 9 || perNamespace["b"] != 9 {
		t.Errorf("permissions per namespace: %v, want 9 in each of a and b", perNamespace)
	}
	if got := NamespaceAccess([]string{"a", "b"}); len(got) != 4 || got[0].Name != "a" || got[3].Name != "b" || got[3].Namespace != "" {
		t.Errorf("NamespaceAccess = %v: want list and watch of each Namespace by name", got)
	}
}

// A controller's options say what it needs: its kinds (Jobs add their
// re-creation), its custom kinds, its ignored types, and the Lease with
// leader election.
func TestSettingsOf(t *testing.T) {
	o := controller.Options{ControllerNamespace: "reroll-system", HashKeySecret: "key", PendingChangesSecret: "pending"}
	o.Kinds = []string{"deployments", controller.JobsKind}
	o.ExtraKinds = []controller.ExtraKind{controller.ArgoRollouts()}
	o.IgnoreConfigTypes = []plan.ConfigType{plan.TypeSecret}
	s := SettingsOf(o, "leases")
	want := []schema.GroupVersionResource{{Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "batch", Version: "v1", Resource: "jobs"}}
	if !slices.Equal(s.BuiltinResources, want) || !s.RecreatesJobs || !s.IgnoreSecrets || s.IgnoreConfigMaps ||
		len(s.ExtraKinds) != 1 || s.ExtraKinds[0].String() != "rollouts.argoproj.io" || !s.LeaderElect || s.LeaseNamespace != "leases" {
		t.Errorf("settings %+v", s)
	}
	if s := SettingsOf(controller.Options{}, ""); len(s.BuiltinResources) != 4 || s.LeaderElect || s.RecreatesJobs {
		t.Errorf("defaults: %+v", s)
	}
}
