package controller

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/reroll/reroll/pkg/plan"
)

// ExtraKind is a custom resource with a pod template that reroll rolls
// through the dynamic client, as given to --extra-kinds.
type ExtraKind struct {
	// Arg is the item as given, for messages.
	Arg string
	// GVR is the resource.version.group reading of Arg, if it has one.
	GVR *schema.GroupVersionResource
	// GR is the resource.group reading of Arg (preferred version).
	GR schema.GroupResource
	// TemplatePath is where the pod template is, such as [spec template].
	TemplatePath []string
	// Status reads the kind's rollout status; nil reads the common status
	// conventions (plan.CustomStatus).
	Status func(*unstructured.Unstructured) plan.RolloutStatus
	// CanRestart: the kind can roll by a restart (spec.restartAt), as Argo
	// Rollouts can.
	CanRestart bool
	// WorkloadRef: an object without a template at TemplatePath may name a
	// Deployment whose template it runs, in spec.workloadRef (Argo).
	WorkloadRef bool
}

// ArgoRolloutsKind is the --kinds name of Argo Rollouts.
const ArgoRolloutsKind = "rollouts"

// ArgoRollouts returns Argo Rollouts as a kind reroll knows: a custom kind
// (its CRD comes and goes like any other) whose progress is Argo's own
// (plan.ArgoRolloutStatus) and which can roll by a restart.
func ArgoRollouts() ExtraKind {
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	return ExtraKind{Arg: "rollouts.v1alpha1.argoproj.io", GVR: &gvr, GR: gvr.GroupResource(), TemplatePath: []string{"spec", "template"},
		Status: plan.ArgoRolloutStatus, CanRestart: true, WorkloadRef: true}
}

// versionPattern matches Kubernetes API versions such as v1 or v2beta3.
var versionPattern = regexp.MustCompile(`^v[0-9]+((alpha|beta)[0-9]+)?$`)

// GroupResource is the kind's group and resource for RBAC checks, before
// discovery can say which reading of Arg is served: resource.version.group
// when the middle part looks like a version, else resource.group.
func (k ExtraKind) GroupResource() schema.GroupResource {
	if k.GVR != nil && versionPattern.MatchString(k.GVR.Version) {
		return k.GVR.GroupResource()
	}
	return k.GR
}

// ParseExtraKinds parses a comma-separated --extra-kinds value: items of the
// form resource.version.group or resource.group (the preferred version),
// each optionally followed by ":" and the dotted path of the pod template
// (default spec.template). An empty value means none.
func ParseExtraKinds(value string) ([]ExtraKind, error) {
	if value == "" {
		return nil, nil
	}
	var kinds []ExtraKind
	var seen []string
	for _, item := range strings.Split(value, ",") {
		resource, path, hasPath := strings.Cut(item, ":")
		if resource == "" || strings.TrimSpace(item) != item {
			return nil, fmt.Errorf("--extra-kinds: item %q is empty or has spaces", item)
		}
		for _, part := range strings.Split(resource, ".") {
			if msgs := validation.IsDNS1123Label(part); len(msgs) > 0 {
				return nil, fmt.Errorf("--extra-kinds: %q is not resource.version.group or resource.group: %q %s", item, part, strings.Join(msgs, ", "))
			}
		}
		if !strings.Contains(resource, ".") {
			return nil, fmt.Errorf("--extra-kinds: %q has no group; write resource.group or resource.version.group", item)
		}
		if !hasPath {
			path = "spec.template"
		}
		segments := strings.Split(path, ".")
		for _, s := range segments {
			if s == "" || strings.ContainsAny(s, " \t\n/") {
				return nil, fmt.Errorf("--extra-kinds: %q has an invalid template path %q", item, path)
			}
		}
		if slices.Contains(seen, resource) {
			return nil, fmt.Errorf("--extra-kinds: %q is listed twice", resource)
		}
		seen = append(seen, resource)
		gvr, gr := schema.ParseResourceArg(resource)
		kinds = append(kinds, ExtraKind{Arg: item, GVR: gvr, GR: gr, TemplatePath: segments})
	}
	return kinds, nil
}
