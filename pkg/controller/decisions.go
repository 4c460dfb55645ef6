package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/reroll/reroll/pkg/flags"
	"github.com/reroll/reroll/pkg/plan"
)

// Decisions are the settings that change what reroll decides for a
// workload: which workloads and objects it sees, how a workload opts in,
// what counts as a change, and which holds apply. reroll and kubectl-reroll
// both build them with DecisionFlags, reroll from its command line and the
// plugin from the values reroll published (PublishedDecisions), with its own
// flags on top: the plugin then decides with reroll's settings and code.
type Decisions struct {
	// AutoAll treats every workload as annotated reroll.dev/auto: "true".
	AutoAll bool
	// ReloaderAnnotations reads stakater/Reloader's annotations too.
	ReloaderAnnotations bool
	// RollOnAdopt rolls a workload the first time it is seen, instead of
	// recording a baseline.
	RollOnAdopt bool
	// RollOnDelete rolls the consumers of a deleted consumed object
	// (--reload-on-delete).
	RollOnDelete bool
	// IgnoreConfigTypes are the types of config object never watched,
	// cached or rolled on (--resources-to-ignore).
	IgnoreConfigTypes []plan.ConfigType

	// Kinds are the built-in workload kinds watched, by their --kinds
	// names (see Kinds); nil means the default ones.
	Kinds []string
	// ExtraKinds are the custom kinds to roll (--extra-kinds), and Argo
	// Rollouts when --kinds names them.
	ExtraKinds []ExtraKind
	// SecretsStoreCSI watches the Secrets Store CSI driver's
	// SecretProviderClassPodStatuses while their CRD exists (csi.go).
	SecretsStoreCSI bool

	// Namespaces limits the informers to these namespaces, each watched on
	// its own (a Role in each is enough); empty means all.
	Namespaces []string
	// NamespaceSelector is a label selector on Namespaces: workloads in
	// Namespaces that do not match are never synced. Empty means all.
	NamespaceSelector string
	// IgnoreNamespaces are never watched: every informer excludes them
	// server-side, so nothing of theirs is cached.
	IgnoreNamespaces []string
	// ConfigSelector is a label selector that narrows, server-side, which
	// ConfigMaps and Secrets are watched. Empty means all.
	ConfigSelector string

	// Waves are the waves of every change whose object has no
	// reroll.dev/waves annotation; nil rolls every consumer at once.
	Waves []plan.WaveStep
	// RolloutWindow is when rolls may start, unless the workload, a changed
	// object or the Namespace sets its own; nil: any time.
	RolloutWindow plan.Windows
	// RolloutTimeout is how long a rollout of a StatefulSet or DaemonSet may
	// take before it counts as failed.
	RolloutTimeout time.Duration
	// MaxRolloutsPerSecond spaces rolls over all workloads; 0: no limit.
	MaxRolloutsPerSecond float64
	// MaxInflightRollouts caps the opted-in workloads whose rollout is
	// incomplete, whoever started it; 0: no cap.
	MaxInflightRollouts int
	// MaxRollsPerWorkload holds a workload that rolled N times within a
	// window; zero: no limit.
	MaxRollsPerWorkload plan.RollLimit
	// BakeTime is how long a workload reroll rolled must stay fully
	// available after its rollout completed before it counts as complete,
	// unless the workload or the changed object sets its own
	// (reroll.dev/bake-time); zero: no bake.
	BakeTime time.Duration
}

// The groups of the decision flags (flags.Flag.Group): what reroll watches
// and how workloads opt in, and the rollout-safety policies.
const (
	GroupWatch  = "watch"
	GroupSafety = "safety"
)

// DecisionFlags declares the flags of d: the only place a decision setting
// is defined. reroll and kubectl-reroll both register them, so the plugin
// takes every one of them as an override, under the same name, default and
// checks, and validating them (flags.Set.Validate) builds d on both sides.
//
// Long: the table itself, one entry per flag.
func DecisionFlags(d *Decisions) []*flags.Flag {
	watch := []*flags.Flag{
		flags.Parsed(&d.Namespaces, "namespaces", "", "Watch only these namespaces, comma-separated, each on its own: a Role in each is enough. Empty: all namespaces.",
			parseNamespaces),
		flags.Parsed(&d.NamespaceSelector, "namespace-selector", "", "Label selector on Namespaces: workloads in Namespaces that do not match are never synced; Namespaces that start or stop matching are picked up at run time. Empty: all.",
			parseSelector),
		flags.Parsed(&d.IgnoreNamespaces, "ignore-namespaces", "", "Namespaces never watched, comma-separated; excluded server-side, so nothing of theirs is cached.",
			plan.ParseNamespaceList),
		flags.Parsed(&d.ConfigSelector, "config-selector", "", "Label selector narrowing which ConfigMaps and Secrets are watched.",
			parseSelector),
		flags.Parsed(&d.Kinds, "kinds", strings.Join(DefaultKindNames(), ","), "Built-in workload kinds to watch, comma-separated: deployments, statefulsets, daemonsets, cronjobs, jobs (re-created to roll; added by default with --reloader-annotations), and rollouts (Argo Rollouts, watched while their CRD exists).",
			parseKinds),
		flags.Parsed(&d.ExtraKinds, "extra-kinds", "", "Custom kinds with a pod template to roll, comma-separated: resource.version.group or resource.group, each optionally followed by :path.of.template (default spec.template).",
			func(v string) ([]ExtraKind, error) { return d.withArgoRollouts(v) }),
		flags.Bool(&d.SecretsStoreCSI, "secrets-store-csi", false, "Roll workloads whose Secrets Store CSI volumes' objects rotate, read from the driver's SecretProviderClassPodStatuses while their CRD exists."),
		flags.Bool(&d.AutoAll, "auto-all", false, "Treat every workload as annotated reroll.dev/auto: \"true\" (\"false\" opts out)."),
		flags.Bool(&d.ReloaderAnnotations, "reloader-annotations", false, "Also read stakater/Reloader's annotations (docs/migrating-from-reloader.md)."),
		flags.Bool(&d.RollOnAdopt, "roll-on-adopt", false, "Roll a workload the first time it is seen, instead of recording a baseline."),
		flags.Bool(&d.RollOnDelete, "reload-on-delete", false, "Roll the consumers of a deleted ConfigMap or Secret they consume (Reloader's --reload-on-delete); new pods cannot start until a required one is back."),
		flags.Parsed(&d.IgnoreConfigTypes, "resources-to-ignore", "", "configMaps or secrets: that type is neither watched nor cached, and never rolls anything (Reloader's --resources-to-ignore).",
			parseResourcesToIgnore),
	}
	safety := []*flags.Flag{
		flags.Parsed(&d.Waves, "waves", "", "Roll the consumers of a changed ConfigMap or Secret in waves, such as 1,10%,100%, unless it has reroll.dev/waves. Empty: all at once.",
			plan.ParseWaves),
		flags.Parsed(&d.RolloutWindow, "rollout-window", "", "When rolls may start, unless the workload, the changed object or its Namespace has reroll.dev/rollout-window, such as \"Mon-Fri 02:00-05:00 Europe/Berlin; Sat-Sun 00:00-23:59 UTC\". Empty: any time.",
			plan.ParseWindows),
		flags.Duration(&d.BakeTime, "bake-time", 30*time.Second, "How long a workload reroll rolled must stay fully available after its rollout completed before it counts as complete, for waves, the halt, the in-flight cap and windows; a restart or CrashLoopBackOff of its new pods, or a drop in availability, inside it halts the change. reroll.dev/bake-time on the workload or the changed object overrides it. 0 disables it.",
			flags.NotNegative[time.Duration]()),
		flags.Duration(&d.RolloutTimeout, "rollout-timeout", 10*time.Minute, "How long a StatefulSet or DaemonSet rollout may take before it counts as failed (Deployments use their progressDeadlineSeconds).",
			flags.Positive[time.Duration]()),
		flags.Float(&d.MaxRolloutsPerSecond, "max-rollouts-per-second", 0, "Space rolls over all workloads to at most this many per second. 0: no limit.",
			flags.NotNegative[float64]()),
		flags.Int(&d.MaxInflightRollouts, "max-inflight-rollouts", 0, "Roll nothing while this many opted-in workloads have an incomplete rollout. 0: no cap.",
			flags.NotNegative[int]()),
		flags.Parsed(&d.MaxRollsPerWorkload, "max-rolls-per-workload", "", "Hold a workload rolled N times within DURATION, written N/DURATION such as 3/1m; it rolls once more, to the latest content, when the window allows. Empty: no limit.",
			plan.ParseRollLimit),
	}
	for _, f := range watch {
		f.In(GroupWatch)
	}
	for _, f := range safety {
		f.In(GroupSafety)
	}
	return append(watch, safety...)
}

// withArgoRollouts parses --extra-kinds, and moves Argo Rollouts from
// d.Kinds (parsed before it, in DecisionFlags' order) to the extra kinds:
// they come and go with their CRD like any custom kind, but with Argo's own
// progress and a roll by restart.
func (d *Decisions) withArgoRollouts(value string) ([]ExtraKind, error) {
	extra, err := ParseExtraKinds(value)
	if err != nil {
		return nil, err
	}
	i := slices.Index(d.Kinds, ArgoRolloutsKind)
	if i < 0 {
		return extra, nil
	}
	d.Kinds = slices.Delete(slices.Clone(d.Kinds), i, i+1)
	argo := ArgoRollouts()
	if slices.ContainsFunc(extra, func(k ExtraKind) bool { return k.GroupResource() == argo.GR }) {
		return nil, fmt.Errorf("--kinds=rollouts and --extra-kinds both name Argo Rollouts; keep --kinds=rollouts, which reads Argo's own progress")
	}
	return append(extra, argo), nil
}

// parseSelector checks a label selector and keeps its text.
func parseSelector(v string) (string, error) {
	_, err := labels.Parse(v)
	return v, err
}

// parseNamespaces parses a list of watched namespaces.
func parseNamespaces(v string) ([]string, error) {
	return plan.ParseNamespaceList(v)
}

// parseKinds parses --kinds: known kinds, no duplicates.
func parseKinds(value string) ([]string, error) {
	known := KindNames()
	var kinds []string
	for _, k := range strings.Split(value, ",") {
		switch {
		case !slices.Contains(known, k):
			return nil, fmt.Errorf("--kinds: unknown kind %q; the kinds are %s", k, strings.Join(known, ", "))
		case slices.Contains(kinds, k):
			return nil, fmt.Errorf("--kinds: %q is listed twice", k)
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// parseResourcesToIgnore parses --resources-to-ignore, as Reloader spells
// it: configMaps or secrets (case-insensitive); empty ignores nothing.
func parseResourcesToIgnore(v string) ([]plan.ConfigType, error) {
	switch strings.ToLower(v) {
	case "":
		return nil, nil
	case "configmaps":
		return []plan.ConfigType{plan.TypeConfigMap}, nil
	case "secrets":
		return []plan.ConfigType{plan.TypeSecret}, nil
	}
	return nil, fmt.Errorf("--resources-to-ignore must be configMaps or secrets, not %q", v)
}

// ignores reports whether d ignores config type t.
func (d Decisions) ignores(t plan.ConfigType) bool {
	return slices.Contains(d.IgnoreConfigTypes, t)
}

// AnnotationSettings is the annotation on reroll's hash key Secret in which
// reroll publishes the values of its decision flags (PublishedDecisions),
// where kubectl-reroll, which reads that Secret for the hash key, finds
// them.
const AnnotationSettings = "reroll.dev/settings"

// settingsFormat is the version of the published settings' format. A
// plugin that reads a newer one says so and decides without them.
const settingsFormat = 1

// publishedSettings is the JSON of AnnotationSettings.
type publishedSettings struct {
	// Format is settingsFormat.
	Format int `json:"format"`
	// Flags are the decision flags' values, by name, defaults included, so
	// that a plugin whose defaults differ still decides as reroll does.
	Flags map[string]string `json:"flags"`
}

// PublishedDecisions returns the value of AnnotationSettings for the values
// of the decision flags.
func PublishedDecisions(values map[string]string) string {
	b, _ := json.Marshal(publishedSettings{Format: settingsFormat, Flags: values})
	return string(b)
}

// ReadPublishedDecisions returns the decision flags' values that reroll
// published in AnnotationSettings, or an error that says why they cannot
// be used (a newer format, or not JSON).
func ReadPublishedDecisions(value string) (map[string]string, error) {
	var s publishedSettings
	if err := json.Unmarshal([]byte(value), &s); err != nil {
		return nil, fmt.Errorf("%s is not reroll's settings: %w", AnnotationSettings, err)
	}
	if s.Format != settingsFormat {
		return nil, fmt.Errorf("%s has format %d, and this kubectl-reroll reads format %d: upgrade it", AnnotationSettings, s.Format, settingsFormat)
	}
	return maps.Clone(s.Flags), nil
}
