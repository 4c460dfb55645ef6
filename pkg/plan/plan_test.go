package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Compute decides from cached state alone: one case per way a sync ends.
func TestPlanSync(t *testing.T) {
	key := testKey(t, 7)
	settings := Settings{HashKey: key}
	cfgRefs := []PodReference{{Ref: ConfigRef{TypeConfigMap, "cfg"}, Site: ReferenceSite{Field: SiteEnvFrom, Owner: "app"}}}
	lookup := func(objects map[ConfigRef]CachedConfig) ConfigLookup {
		return func(ref ConfigRef) (CachedConfig, bool) {
			c, ok := objects[ref]
			return c, ok
		}
	}
	v1 := map[ConfigRef]CachedConfig{{TypeConfigMap, "cfg"}: {Digests: map[string]string{"a": DigestValue("1")}}}
	v2 := map[ConfigRef]CachedConfig{{TypeConfigMap, "cfg"}: {Digests: map[string]string{"a": DigestValue("2")}}}
	state := func(objects map[ConfigRef]CachedConfig) string {
		s, _ := CalculateState(key, CalculateConsumption(cfgRefs, OptIn{Auto: true}), lookup(objects), nil, false)
		return s.String()
	}
	manyRefs := make([]PodReference, MaxReferences+1)
	for i := range manyRefs {
		manyRefs[i] = PodReference{Ref: ConfigRef{TypeSecret, fmt.Sprint("s-", i)}}
	}
	auto := map[string]string{AnnotationAuto: "true"}
	tests := []struct {
		name         string
		in           Input
		wantOptedOut bool
		wantBlocked  bool
		wantProblems []string
		wantAction   SyncAction
	}{
		{name: "not opted in", in: Input{References: cfgRefs}, wantOptedOut: true},
		{name: "malformed annotation", in: Input{Annotations: map[string]string{AnnotationAuto: "yes"}, References: cfgRefs},
			wantBlocked: true, wantProblems: []string{ReasonInvalidAnnotation}},
		{name: "unusable template", in: Input{Annotations: auto, TemplateError: "no pod template at spec.template"},
			wantBlocked: true, wantProblems: []string{ReasonInvalidTemplate}},
		{name: "too many references", in: Input{Annotations: auto, References: manyRefs, Lookup: lookup(nil)},
			wantBlocked: true, wantProblems: []string{ReasonTooManyReferences}},
		{name: "missing object at first sight: adopted with it absent, so that its creation rolls", in: Input{Annotations: auto, References: cfgRefs, Lookup: lookup(nil)},
			wantAction: ActionAdopt, wantProblems: []string{ReasonMissingReference}},
		{name: "missing object once adopted: blocked", in: Input{Annotations: auto, References: cfgRefs, Lookup: lookup(nil), Recorded: state(v1), HasRecorded: true},
			wantBlocked: true, wantProblems: []string{ReasonMissingReference}},
		{name: "first sight adopts", in: Input{Annotations: auto, References: cfgRefs, Lookup: lookup(v1)}, wantAction: ActionAdopt},
		{name: "unchanged", in: Input{Annotations: auto, References: cfgRefs, Lookup: lookup(v1), Recorded: state(v1), HasRecorded: true},
			wantAction: ActionNone},
		{name: "changed content rolls", in: Input{Annotations: auto, References: cfgRefs, Lookup: lookup(v2), Recorded: state(v1), HasRecorded: true},
			wantAction: ActionRoll},
		{name: "malformed ignore warns and still decides", in: Input{Annotations: auto, References: cfgRefs, Recorded: state(v1), HasRecorded: true,
			Lookup: lookup(map[ConfigRef]CachedConfig{{TypeConfigMap, "cfg"}: {Digests: v2[ConfigRef{TypeConfigMap, "cfg"}].Digests, MalformedIgnore: "yes"}})},
			wantProblems: []string{ReasonInvalidAnnotation}, wantAction: ActionRoll},
		{name: "unreadable state rebaselines", in: Input{Annotations: auto, References: cfgRefs, Lookup: lookup(v1), Recorded: "garbage", HasRecorded: true},
			wantAction: ActionRebaseline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compute(tt.in, settings)
			var reasons []string
			for _, pr := range p.Problems {
				reasons = append(reasons, pr.Reason)
			}
			if p.OptedOut != tt.wantOptedOut || p.Blocked != tt.wantBlocked || !slices.Equal(reasons, tt.wantProblems) || p.Decision.Action != tt.wantAction {
				t.Errorf("plan = optedOut %v, blocked %v, problems %q, action %v; want %v, %v, %q, %v",
					p.OptedOut, p.Blocked, reasons, p.Decision.Action, tt.wantOptedOut, tt.wantBlocked, tt.wantProblems, tt.wantAction)
			}
		})
	}
}

// How a roll is written: reroll's strategy annotation, Reloader's under
// --reloader-annotations, and bad values as blocking InvalidAnnotations.
func TestComputeStrategy(t *testing.T) {
	key := testKey(t, 3)
	tests := []struct {
		name        string
		annotations map[string]string
		reloader    bool
		canRestart  bool
		want        Strategy
		problem     string
	}{
		{name: "default", canRestart: true, want: StrategyTemplate},
		{name: "restart", annotations: map[string]string{AnnotationStrategy: "restart"}, canRestart: true, want: StrategyRestart},
		{name: "template", annotations: map[string]string{AnnotationStrategy: "template"}, canRestart: true, want: StrategyTemplate},
		{name: "Reloader's restart", annotations: map[string]string{ReloaderRolloutStrategy: "restart"}, reloader: true, canRestart: true, want: StrategyRestart},
		{name: "Reloader's rollout", annotations: map[string]string{ReloaderRolloutStrategy: "rollout"}, reloader: true, canRestart: true, want: StrategyTemplate},
		{name: "Reloader's ignored without the flag", annotations: map[string]string{ReloaderRolloutStrategy: "restart"}, canRestart: true, want: StrategyTemplate},
		{name: "reroll's wins", annotations: map[string]string{AnnotationStrategy: "template", ReloaderRolloutStrategy: "restart"}, reloader: true, canRestart: true, want: StrategyTemplate},
		{name: "unknown value", annotations: map[string]string{AnnotationStrategy: "bounce"}, canRestart: true,
			problem: `reroll.dev/strategy must be "template" or "restart", not "bounce"`},
		{name: "unknown Reloader value", annotations: map[string]string{ReloaderRolloutStrategy: "recreate"}, reloader: true, canRestart: true,
			problem: `reloader.stakater.com/rollout-strategy must be "rollout" or "restart", not "recreate"`},
		{name: "restart on a kind that cannot", annotations: map[string]string{AnnotationStrategy: "restart"},
			problem: `reroll.dev/strategy="restart" is for Argo Rollouts only`},
		{name: "Reloader's restart on a kind that cannot is ignored, as by Reloader", annotations: map[string]string{ReloaderRolloutStrategy: "restart"},
			reloader: true, want: StrategyTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			annotations := map[string]string{AnnotationAuto: "true"}
			for k, v := range tt.annotations {
				annotations[k] = v
			}
			p := Compute(Input{Annotations: annotations, CanRestart: tt.canRestart, Lookup: func(ConfigRef) (CachedConfig, bool) { return CachedConfig{}, false }},
				Settings{HashKey: key, OptIn: OptInSettings{Reloader: tt.reloader}})
			if tt.problem != "" {
				if !p.Blocked || len(p.Problems) != 1 || p.Problems[0].Reason != ReasonInvalidAnnotation || !strings.Contains(p.Problems[0].Message, tt.problem) {
					t.Errorf("plan %+v, want a blocking InvalidAnnotation with %q", p, tt.problem)
				}
				return
			}
			if p.Blocked || p.Strategy != tt.want {
				t.Errorf("plan %+v, want strategy %v", p, tt.want)
			}
		})
	}
}

// A CSI volume of the Secrets Store driver consumes its class; the class's
// first versions (its pods mounted them) are recorded, not rolled; a
// rotation rolls.
func TestComputeSecretProviderClass(t *testing.T) {
	key := testKey(t, 5)
	spec := &corev1.PodSpec{Volumes: []corev1.Volume{{Name: "vault", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
		Driver: CSIDriverSecretsStore, VolumeAttributes: map[string]string{"secretProviderClass": "db"}}}}}}
	refs := PodReferences(spec)
	want := ConfigRef{Type: TypeSecretProviderClass, Name: "db"}
	if len(refs) != 1 || refs[0].Ref != want || !refs[0].Optional {
		t.Fatalf("references %+v, want one optional reference to %v", refs, want)
	}
	versions := map[string]string{}
	lookup := func(ref ConfigRef) (CachedConfig, bool) {
		if ref != want || len(versions) == 0 {
			return CachedConfig{}, false
		}
		return CachedConfig{Digests: versions}, true
	}
	plan := func(recorded string, annotations map[string]string, reloader bool) Plan {
		return Compute(Input{Annotations: annotations, References: refs, Recorded: recorded, HasRecorded: recorded != "", Lookup: lookup},
			Settings{HashKey: key, OptIn: OptInSettings{Reloader: reloader}})
	}
	auto := map[string]string{AnnotationAuto: "true"}
	adopted := plan("", auto, false)
	if adopted.Decision.Action != ActionAdopt {
		t.Fatalf("before any pod mounted: %+v", adopted)
	}
	versions["secret/password"] = DigestValue("v1")
	if p := plan(adopted.Desired.String(), auto, false); p.Decision.Action != ActionRecord {
		t.Errorf("first versions: %v, want record", p.Decision.Action)
	}
	mounted := plan("", auto, false).Desired.String()
	versions["secret/password"] = DigestValue("v2")
	if p := plan(mounted, auto, false); p.Decision.Action != ActionRoll {
		t.Errorf("rotation: %v, want roll", p.Decision.Action)
	}
	for name, annotations := range map[string]map[string]string{
		"by name":           {AnnotationSecretProviderClasses: "db"},
		"Reloader's reload": {ReloaderSecretProviderClassReload: "db"},
		"Reloader's auto":   {ReloaderSecretProviderClassAuto: "true"},
		"Reloader's typed ConfigMap auto does not cover it": {ReloaderConfigMapAuto: "true"},
	} {
		p := plan(mounted, annotations, true)
		rolls := p.Decision.Action == ActionRoll
		if wantRoll := !strings.Contains(name, "does not"); rolls != wantRoll {
			t.Errorf("%s: %v", name, p.Decision.Action)
		}
	}
}

// An ignored type (--resources-to-ignore) is consumed by no workload: its
// references, auto or by name, are dropped.
func TestIgnoredTypeIsNotConsumed(t *testing.T) {
	spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "app", EnvFrom: []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
	}}}}
	o, _, err := ParseOptIn(map[string]string{AnnotationAuto: "true", AnnotationSecrets: "named"}, OptInSettings{IgnoreTypes: []ConfigType{TypeSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range CalculateConsumption(PodReferences(spec), o) {
		got = append(got, u.Ref.String())
	}
	if strings.Join(got, ",") != "ConfigMap/cfg" {
		t.Errorf("consumes %q, want only ConfigMap/cfg", got)
	}
}
