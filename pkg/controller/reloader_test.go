package controller

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/plan/plantest"
)

// reloaderCase is one row of Reloader's annotation reference: annotations
// on the workload (or its pod template) and on the changed object, what
// changes, whether Reloader documents a roll, what reroll does, and why
// they differ where they do.
type reloaderCase struct {
	name string
	// workload and template are the annotations of the Deployment and of
	// its pod template.
	workload, template map[string]string
	// cfg and sec are the annotations of ConfigMap "cfg" and Secret "sec".
	cfg, sec map[string]string
	// change is what changes: "cfg key a", "cfg key b", "sec", "other".
	change string
	// reloader is whether Reloader's documentation says it rolls.
	reloader bool
	// reroll is whether reroll rolls, with --reloader-annotations.
	reroll bool
	// warning is the Warning reason reroll reports, if any.
	warning string
	// differs says why reroll differs from Reloader, where it does.
	differs string
	// noFlag runs reroll without --reloader-annotations.
	noFlag bool
}

// The conformance table: one case per row of Reloader's annotation
// reference (v1.4), run through reroll's sync. The Deployment reads key a
// of ConfigMap "cfg" (valueFrom) and mounts Secret "sec"; ConfigMap "other"
// is referenced by nothing.
func TestReloaderAnnotationConformance(t *testing.T) {
	on := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []reloaderCase{
		{name: "auto: a consumed key changes", workload: on(plan.ReloaderAuto, "true"), change: "cfg key a", reloader: true, reroll: true},
		{name: "auto: a key the pod does not read changes", workload: on(plan.ReloaderAuto, "true"), change: "cfg key b", reloader: true, reroll: false,
			differs: "reroll is key-granular: only the keys a pod reads roll it"},
		{name: "auto: a referenced Secret changes", workload: on(plan.ReloaderAuto, "true"), change: "sec", reloader: true, reroll: true},
		{name: "auto: an unreferenced ConfigMap changes", workload: on(plan.ReloaderAuto, "true"), change: "other", reloader: false, reroll: false},
		{name: "auto in Go bool form", workload: on(plan.ReloaderAuto, "True"), change: "cfg key a", reloader: true, reroll: true},
		{name: "auto malformed", workload: on(plan.ReloaderAuto, "maybe"), change: "cfg key a", reloader: false, reroll: false, warning: plan.ReasonInvalidAnnotation,
			differs: "the same outcome, but reroll says why with a Warning"},
		{name: "configmap auto: a ConfigMap changes", workload: on(plan.ReloaderConfigMapAuto, "true"), change: "cfg key a", reloader: true, reroll: true},
		{name: "configmap auto: a Secret changes", workload: on(plan.ReloaderConfigMapAuto, "true"), change: "sec", reloader: false, reroll: false},
		{name: "secret auto: a Secret changes", workload: on(plan.ReloaderSecretAuto, "true"), change: "sec", reloader: true, reroll: true},
		{name: "secret auto: a ConfigMap changes", workload: on(plan.ReloaderSecretAuto, "true"), change: "cfg key a", reloader: false, reroll: false},
		{name: "typed auto wins over auto false", workload: on(plan.ReloaderAuto, "false", plan.ReloaderSecretAuto, "true"), change: "sec", reloader: true, reroll: true},
		{name: "configmap reload: a named, unreferenced ConfigMap", workload: on(plan.ReloaderConfigMapReload, "other"), change: "other", reloader: true, reroll: true},
		{name: "configmap reload, spaces after commas", workload: on(plan.ReloaderConfigMapReload, "cfg, other"), change: "other", reloader: true, reroll: true},
		{name: "configmap reload, a regular expression", workload: on(plan.ReloaderConfigMapReload, "oth.*"), change: "other", reloader: true, reroll: true,
			differs: "a pattern must match the whole name"},
		{name: "configmap reload, a pattern that matches nothing changed", workload: on(plan.ReloaderConfigMapReload, "nothing-.*"), change: "other", reloader: false, reroll: false},
		{name: "configmap reload, a bad pattern", workload: on(plan.ReloaderConfigMapReload, "oth(er"), change: "other", reloader: false, reroll: false,
			warning: plan.ReasonInvalidAnnotation, differs: "Reloader skips a bad pattern; reroll says so with a Warning"},
		{name: "secret reload: a named Secret", workload: on(plan.ReloaderSecretReload, "sec"), change: "sec", reloader: true, reroll: true},
		{name: "search: a referenced ConfigMap with match", workload: on(plan.ReloaderSearch, "true"), cfg: on(plan.ReloaderMatch, "true"), change: "cfg key a", reloader: true, reroll: true},
		{name: "search: a referenced ConfigMap without match", workload: on(plan.ReloaderSearch, "true"), change: "cfg key a", reloader: false, reroll: false},
		{name: "auto and search: auto wins", workload: on(plan.ReloaderAuto, "true", plan.ReloaderSearch, "true"), change: "cfg key a", reloader: true, reroll: true},
		{name: "exclude: an excluded ConfigMap", workload: on(plan.ReloaderAuto, "true", plan.ReloaderConfigMapExclude, "cfg"), change: "cfg key a", reloader: false, reroll: false},
		{name: "exclude: another ConfigMap", workload: on(plan.ReloaderAuto, "true", plan.ReloaderSecretExclude, "cfg"), change: "cfg key a", reloader: true, reroll: true},
		{name: "ignore on the ConfigMap", workload: on(plan.ReloaderAuto, "true"), cfg: on(plan.ReloaderIgnore, "true"), change: "cfg key a", reloader: false, reroll: false},
		{name: "annotations on the pod template only", template: on(plan.ReloaderAuto, "true"), change: "cfg key a", reloader: true, reroll: true},
		{name: "pause period: one roll, after the period", workload: on(plan.ReloaderAuto, "true", plan.ReloaderPausePeriod, "5m"), change: "cfg key a", reloader: true, reroll: true,
			differs: "the period applies to every kind, not only Deployments, and waits without pausing the workload"},
		{name: "pause period malformed", workload: on(plan.ReloaderAuto, "true", plan.ReloaderPausePeriod, "soon"), change: "cfg key a", reloader: true, reroll: false,
			warning: plan.ReasonInvalidAnnotation, differs: "Reloader ignores a bad period; reroll holds the roll with a Warning until it is fixed"},
		{name: "reroll's auto false disagrees with Reloader's true", workload: on(plan.AnnotationAuto, "false", plan.ReloaderAuto, "true"), change: "cfg key a",
			reloader: true, reroll: false, warning: plan.ReasonConflictingAnnotations, differs: "reroll's annotation wins, with a Warning"},
		{name: "rollout-strategy restart on a Deployment", workload: on(plan.ReloaderAuto, "true", plan.ReloaderRolloutStrategy, "restart"), change: "cfg key a",
			reloader: true, reroll: true},
		{name: "rollout-strategy malformed", workload: on(plan.ReloaderAuto, "true", plan.ReloaderRolloutStrategy, "bounce"), change: "cfg key a",
			reloader: true, reroll: false, warning: plan.ReasonInvalidAnnotation, differs: "Reloader falls back to a roll; reroll holds it with a Warning until it is fixed"},
		{name: "secretproviderclass auto: a ConfigMap changes", workload: on(plan.ReloaderSecretProviderClassAuto, "true"), change: "cfg key a", reloader: false, reroll: false},
		{name: "secretproviderclass reload malformed", workload: on(plan.ReloaderSecretProviderClassReload, "a,,b"), change: "cfg key a", reloader: false, reroll: false,
			warning: plan.ReasonInvalidAnnotation, differs: "the same outcome, but reroll says why with a Warning"},
		{name: "without --reloader-annotations", workload: on(plan.ReloaderAuto, "true"), change: "cfg key a", reloader: true, reroll: false, noFlag: true,
			differs: "reroll reads Reloader's annotations only when asked to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runReloaderCase(t, tt)
		})
	}
}

// runReloaderCase adopts the case's Deployment, makes its change through
// the config handlers (as the informers would), syncs, and checks the roll
// and the Warnings.
func runReloaderCase(t *testing.T, tt reloaderCase) {
	t.Helper()
	cfg := configMap("cfg", map[string]string{"a": "1", "b": "1"})
	cfg.Annotations = tt.cfg
	sec := secret("sec", map[string]string{"p": "1"})
	sec.Annotations = tt.sec
	other := configMap("other", map[string]string{"x": "1"})
	f := newFixture(t, cfg, sec, other)
	clk := testingclock.NewFakeClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	f.opts.Clock, f.opts.ReloaderAnnotations, f.opts.Debounce = clk, !tt.noFlag, time.Second
	ctx := f.start()
	d := deployment("web", tt.workload, func(s *corev1.PodSpec) {
		s.Containers[0].Env = []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cfg", "a", false)}
		s.Volumes = []corev1.Volume{{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}}}
	})
	d.Spec.Template.Annotations = tt.template
	if o, _, err := plan.ParseOptIn(plan.WithReloaderFallback(d.Annotations, reloaderOptInAnnotations(tt.template)), plan.OptInSettings{Reloader: !tt.noFlag}); err == nil && o.Enabled() {
		// Adopted as reroll would leave it, from the same annotations.
		d.Annotations = map[string]string{}
		for k, v := range tt.workload {
			d.Annotations[k] = v
		}
		o = o.WithMatches(func(t plan.ConfigType) []string { return f.c.view.configNames(testNamespace, t) })
		consumed := plan.CalculateConsumption(plan.PodReferences(&d.Spec.Template.Spec), o)
		s, _ := plan.CalculateState(f.opts.HashKey, consumed, f.c.view.lookup(testNamespace, map[plan.ConfigRef]map[string]string{}), nil, false)
		d.Annotations[plan.AnnotationConsumed] = s.String()
		d.ResourceVersion = "11"
	}
	f.seed(d)
	switch tt.change {
	case "cfg key a", "cfg key b":
		key := strings.TrimPrefix(tt.change, "cfg key ")
		next := cfg.DeepCopy()
		next.Data[key] = "2"
		f.seed(next)
		configHandler[*corev1.ConfigMap](ctx, f.c, plan.TypeConfigMap).OnUpdate(cachedCopy(cfg).(*corev1.ConfigMap), cachedCopy(next).(*corev1.ConfigMap))
	case "sec":
		next := sec.DeepCopy()
		next.Data["p"] = []byte("2")
		f.seed(next)
		configHandler[*corev1.Secret](ctx, f.c, plan.TypeSecret).OnUpdate(cachedCopy(sec).(*corev1.Secret), cachedCopy(next).(*corev1.Secret))
	case "other":
		next := other.DeepCopy()
		next.Data["x"] = "2"
		f.seed(next)
		configHandler[*corev1.ConfigMap](ctx, f.c, plan.TypeConfigMap).OnUpdate(cachedCopy(other).(*corev1.ConfigMap), cachedCopy(next).(*corev1.ConfigMap))
	}
	f.writes()
	f.events()
	window := time.Second
	if p := tt.workload[plan.ReloaderPausePeriod]; p == "5m" {
		window = 5 * time.Minute
		f.sync(ctx, "web") // inside the period: held
		if rolled := rolls(f.writes()); rolled != 0 {
			t.Fatalf("rolled inside the pause period")
		}
	}
	clk.Step(window)
	f.sync(ctx, "web")
	if got := rolls(f.writes()) == 1; got != tt.reroll {
		t.Errorf("reroll rolled: %v, want %v (Reloader: %v; %s)", got, tt.reroll, tt.reloader, tt.differs)
	}
	var warnings []string
	for _, e := range f.events() {
		if strings.HasPrefix(e, "Warning ") {
			warnings = append(warnings, strings.Fields(e)[1])
		}
	}
	if tt.warning == "" && len(warnings) > 0 || tt.warning != "" && (len(warnings) != 1 || warnings[0] != tt.warning) {
		t.Errorf("warnings %q, want %q", warnings, tt.warning)
	}
	if tt.reloader != tt.reroll && tt.differs == "" {
		t.Errorf("reroll differs from Reloader without a reason in the table")
	}
}

// rolls counts the patches that roll (that set the config hash).
func rolls(writes []patchAction) int {
	n := 0
	for _, w := range writes {
		if strings.Contains(w.body, plan.AnnotationConfigHash) {
			n++
		}
	}
	return n
}

// Reloader's leftovers (its env-vars strategy's STAKATER_* variables and
// its annotations strategy's last-reloaded-from) are adopted without a roll
// and never touched: the adoption patch writes reroll's annotation only.
func TestReloaderLeftoversAdoptedWithoutRoll(t *testing.T) {
	d := deployment("web", map[string]string{plan.ReloaderAuto: "true"}, envFromConfigMap("cfg"))
	d.Spec.Template.Annotations = map[string]string{plan.ReloaderLastReloadedFrom: `{"type":"CONFIGMAP","name":"cfg"}`}
	d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "STAKATER_CFG_CONFIGMAP", Value: "0a1b2c"}}
	f := newFixture(t, d, configMap("cfg", map[string]string{"a": "1"}))
	f.opts.ReloaderAnnotations = true
	ctx := f.start()
	f.sync(ctx, "web")
	f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
}
