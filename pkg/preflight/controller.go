package preflight

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/plan"
)

// SettingsOf returns what a controller configured with o needs checked;
// leaseNamespace is the Lease's namespace with leader election, else empty.
func SettingsOf(o controller.Options, leaseNamespace string) ControllerSettings {
	extra := make([]schema.GroupResource, len(o.ExtraKinds))
	for i, k := range o.ExtraKinds {
		extra[i] = k.GroupResource()
	}
	names := o.Kinds
	if names == nil {
		names = controller.DefaultKindNames()
	}
	var builtin []schema.GroupVersionResource
	for _, name := range names {
		if k, ok := controller.KindNamed(name); ok {
			builtin = append(builtin, k.Resource)
		}
	}
	return ControllerSettings{
		Namespaces:           o.Namespaces,
		SkipNamespaceObjects: o.SkipNamespaceObjects,
		BuiltinResources:     builtin,
		ExtraKinds:           extra,
		DryRun:               o.DryRun,
		ControllerNamespace:  o.ControllerNamespace,
		HashKeySecret:        o.HashKeySecret,
		PendingChangesSecret: o.PendingChangesSecret,
		LeaderElect:          leaseNamespace != "",
		LeaseNamespace:       leaseNamespace,
		RecreatesJobs:        slices.Contains(names, controller.JobsKind),
		SecretsStoreCSI:      o.SecretsStoreCSI,
		WatchesPods:          o.BakeTime > 0,
		IgnoreConfigMaps:     slices.Contains(o.IgnoreConfigTypes, plan.TypeConfigMap),
		IgnoreSecrets:        slices.Contains(o.IgnoreConfigTypes, plan.TypeSecret),
	}
}

// NamespaceObjectsDenied reports whether reroll, watching the namespaces
// watched (none: all), may not read those Namespaces, as with a Role in
// each and no ClusterRole. It then runs without their reroll.dev
// annotations and says so; watching all namespaces, it reports false and
// the preflight check requires the access.
func NamespaceObjectsDenied(ctx context.Context, client kubernetes.Interface, watched []string) (bool, error) {
	if len(watched) == 0 {
		return false, nil
	}
	denied, err := Denied(ctx, client, NamespaceAccess(watched))
	if err != nil || len(denied) == 0 {
		return false, err
	}
	klog.FromContext(ctx).Info("Not reading the watched Namespaces: their reroll.dev annotations (paused, rollout-window) do not apply; grant list and watch on them by name to use them",
		"missing", denied[0].String())
	return true, nil
}
