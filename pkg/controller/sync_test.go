package controller

import (
	"k8s.io/utils/ptr"

	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/plan/plantest"
)

// Invariant 4: the first sight of an opted-in workload records a baseline
// on the workload's metadata and does not roll.
func TestSyncAdoptsWithoutRolling(t *testing.T) {
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	f := newFixture(t, d, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	f.sync(ctx, "web")
	f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
	f.expectEvents() // adopting sends no Event
}

// --roll-on-adopt rolls on first sight instead.
func TestSyncRollOnAdopt(t *testing.T) {
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	f := newFixture(t, d, configMap("cfg", map[string]string{"a": "1"}))
	f.opts.RollOnAdopt = true
	ctx := f.start()
	f.sync(ctx, "web")
	f.expectWrites(f.rollPatch("web", f.recordedState(d)))
	f.expectEvents("Normal Rolled Rolled: rolled on first sight (--roll-on-adopt), consuming 1 ConfigMaps and Secrets")
}

// Invariants 3 and 7: a workload whose consumed content is unchanged since
// its recorded state gets no write at all, as after a controller restart.
func TestSyncUnchangedWritesNothing(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cm)
	ctx := f.start()
	f.seedAdoptedWeb()
	f.sync(ctx, "web")
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents()
}

// Invariant 1: a change to consumed content rolls the workload once, with
// one patch of the consumed annotation and the template's config hash.
func TestSyncRollsOnceWhenConsumedContentChanges(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1", "b": "1"})
	f := newFixture(t, cm)
	ctx := f.start()
	d := f.seedAdoptedWeb()
	f.sync(ctx, "web") // remembers the digests, so the Event can name keys
	f.expectWrites()

	cm = cm.DeepCopy()
	cm.Data["b"] = "2"
	f.seed(cm)
	want := f.recordedState(d)
	f.sync(ctx, "web")
	f.expectWrites(f.rollPatch("web", want))
	f.expectEvents("Normal Rolled Rolled: consumed content changed in ConfigMap/cfg (keys b)")
	if got := f.scrape(`reroll_rollouts_total{kind="Deployment",namespace="team-a"}`); got != "1" {
		t.Errorf("rollouts metric = %q, want 1", got)
	}
	if got := f.scrape(`reroll_rollouts_skipped_total{reason="unchanged"}`); got != "1" {
		t.Errorf("unchanged skips = %q, want 1", got)
	}

	// The informer then delivers reroll's own write: nothing more happens.
	rolled := d.DeepCopy()
	rolled.Annotations[plan.AnnotationConsumed] = want
	rolled.ResourceVersion = "12"
	f.seed(rolled)
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents()
}

// Every reference kind rolls on a change of the key it consumes, and a
// change of a key it does not consume rolls nothing (invariant 5).
func TestSyncEveryReferenceKind(t *testing.T) {
	vol := func(v corev1.VolumeSource) func(*corev1.PodSpec) {
		return func(s *corev1.PodSpec) { s.Volumes = append(s.Volumes, corev1.Volume{Name: "v", VolumeSource: v}) }
	}
	lor := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	items := []corev1.KeyToPath{{Key: "used", Path: "used"}}
	tests := []struct {
		name     string
		isSecret bool
		spec     func(*corev1.PodSpec)
		// everyKey is true when the reference consumes every key.
		everyKey bool
	}{
		{name: "env configMapKeyRef", spec: func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{plantest.ConfigMapKeyEnv("U", "obj", "used", false)}
		}},
		{name: "env secretKeyRef", isSecret: true, spec: func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{plantest.SecretKeyEnv("U", "obj", "used", false)}
		}},
		{name: "envFrom configMapRef", everyKey: true, spec: envFromConfigMap("obj")},
		{name: "envFrom secretRef", isSecret: true, everyKey: true, spec: func(s *corev1.PodSpec) {
			s.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: lor("obj")}}}
		}},
		{name: "configMap volume", everyKey: true, spec: vol(corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: lor("obj")}})},
		{name: "configMap volume items", spec: vol(corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: lor("obj"), Items: items}})},
		{name: "secret volume", isSecret: true, everyKey: true, spec: vol(corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "obj"}})},
		{name: "secret volume items", isSecret: true, spec: vol(corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "obj", Items: items}})},
		{name: "projected configMap", spec: vol(corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: lor("obj"), Items: items}}}}})},
		{name: "projected secret", isSecret: true, everyKey: true, spec: vol(corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{LocalObjectReference: lor("obj")}}}}})},
		{name: "initContainer env", spec: func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "init", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("U", "obj", "used", false)}}}
		}},
		{name: "native sidecar envFrom", isSecret: true, everyKey: true, spec: func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: lor("obj")}}}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := func(used, unused string) runtime.Object {
				data := map[string]string{"used": used, "unused": unused}
				if tt.isSecret {
					return secret("obj", data)
				}
				return configMap("obj", data)
			}
			kind := "ConfigMap"
			if tt.isSecret {
				kind = "Secret"
			}
			f := newFixture(t, obj("1", "1"))
			ctx := f.start()
			d := f.adopted(deployment("web", auto(), tt.spec))
			f.seed(d)
			f.sync(ctx, "web")

			f.seed(obj("1", "2"))
			f.sync(ctx, "web")
			if tt.everyKey {
				f.expectWrites(f.rollPatch("web", f.recordedState(d)))
				f.expectEvents("Normal Rolled Rolled: consumed content changed in " + kind + "/obj (keys unused)")
				return
			}
			f.expectWrites()
			f.expectEvents()

			f.seed(obj("2", "2"))
			f.sync(ctx, "web")
			f.expectWrites(f.rollPatch("web", f.recordedState(d)))
			f.expectEvents("Normal Rolled Rolled: consumed content changed in " + kind + "/obj (keys used)")
		})
	}
}

// Invariant 5: metadata changes of a consumed object never roll.
func TestSyncMetadataChangeDoesNotRoll(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cm)
	ctx := f.start()
	f.seedAdoptedWeb()
	cm = cm.DeepCopy()
	cm.Labels = map[string]string{"team": "a"}
	cm.Annotations = map[string]string{"note": "x", lastAppliedAnnotation: `{"data":{"a":"1"}}`}
	cm.ResourceVersion = "2"
	f.seed(cm)
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents()
}

// Invariant 6: deleting a consumed object does not roll, and says so;
// re-creating it with the same content rolls nothing, with other content
// rolls once.
func TestSyncDeletedConsumedObject(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cm)
	ctx := f.start()
	d := f.seedAdoptedWeb()

	f.unseed(cm)
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents("Warning MissingReference ConfigMap/cfg (referenced by container app envFrom) does not exist; not rolling until it does")

	f.seed(cm)
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents()

	f.unseed(cm)
	f.seed(configMap("cfg", map[string]string{"a": "2"}))
	f.sync(ctx, "web")
	f.expectWrites(f.rollPatch("web", f.recordedState(d)))
	f.expectEvents("Normal Rolled Rolled: consumed content changed in ConfigMap/cfg (keys a)")
}

// An optional reference to an object that does not exist is fine; its
// deletion holds (no roll) and its creation with new content rolls.
func TestSyncOptionalReference(t *testing.T) {
	optionalSecret := func(s *corev1.PodSpec) {
		s.Containers[0].Env = []corev1.EnvVar{plantest.SecretKeyEnv("TOKEN", "token", "t", true)}
	}
	f := newFixture(t)
	ctx := f.start()
	d := deployment("web", auto(), optionalSecret)
	f.seed(d)
	f.sync(ctx, "web")
	absent := f.recordedState(d)
	f.expectWrites(f.baselinePatch("web", absent))
	f.expectEvents() // adopting sends no Event

	d = d.DeepCopy()
	d.Annotations[plan.AnnotationConsumed] = absent
	d.ResourceVersion = "11"
	f.seed(d)
	s := secret("token", map[string]string{"t": "x"})
	f.seed(s)
	present := f.recordedState(d)
	f.sync(ctx, "web")
	f.expectWrites(f.rollPatch("web", present))
	f.expectEvents("Normal Rolled Rolled: consumed content changed in Secret/token (keys t)")

	d = d.DeepCopy()
	d.Annotations[plan.AnnotationConsumed] = present
	d.ResourceVersion = "12"
	f.seed(d)
	f.unseed(s)
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents()
}

// A missing key named by a non-optional reference blocks like a missing
// object.
func TestSyncMissingKey(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	f.seed(deployment("web", auto(), func(s *corev1.PodSpec) {
		s.Containers[0].Env = []corev1.EnvVar{plantest.ConfigMapKeyEnv("B", "cfg", "b", false)}
	}))
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents("Warning MissingKey ConfigMap/cfg has no key b (referenced by container app env B); not rolling until it does")
}

// reroll.dev/ignore on a consumed object: its changes roll nothing.
func TestSyncIgnoredObject(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cm)
	ctx := f.start()
	f.seedAdoptedWeb()
	cm = cm.DeepCopy()
	cm.Annotations = map[string]string{plan.AnnotationIgnore: "true"}
	cm.Data["a"] = "2"
	f.seed(cm)
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents()
}

// By-name annotations watch objects the pod spec does not reference, with
// or without auto.
func TestSyncByNameAnnotations(t *testing.T) {
	cm := configMap("flags", map[string]string{"f": "on"})
	f := newFixture(t, cm)
	ctx := f.start()
	d := f.adopted(deployment("web", map[string]string{plan.AnnotationConfigMaps: "flags"}, nil))
	f.seed(d)
	f.seed(configMap("flags", map[string]string{"f": "off"}))
	f.sync(ctx, "web")
	f.expectWrites(f.rollPatch("web", f.recordedState(d)))
	f.expectEvents("Normal Rolled Rolled: consumed content changed in ConfigMap/flags")
}

// Workloads that are not opted in are never written.
func TestSyncNotOptedIn(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	f.seed(deployment("plain", nil, envFromConfigMap("cfg")))
	f.seed(deployment("out", map[string]string{plan.AnnotationAuto: "false"}, envFromConfigMap("cfg")))
	f.sync(ctx, "plain")
	f.sync(ctx, "out")
	f.expectWrites()
	f.expectEvents()
}

// --auto-all opts every workload in, except those annotated "false".
func TestSyncAutoAll(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "1"}))
	f.opts.AutoAll = true
	ctx := f.start()
	d := deployment("plain", nil, envFromConfigMap("cfg"))
	f.seed(d)
	f.seed(deployment("out", map[string]string{plan.AnnotationAuto: "false"}, envFromConfigMap("cfg")))
	f.sync(ctx, "plain")
	f.sync(ctx, "out")
	f.expectWrites(f.baselinePatch("plain", f.recordedState(d)))
}

// Malformed annotations get a Warning and no write.
func TestSyncInvalidAnnotation(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		want        string
	}{
		"auto":         {map[string]string{plan.AnnotationAuto: "yes"}, `Warning InvalidAnnotation reroll.dev/auto must be "true" or "false", not "yes"; not rolling until it is fixed`},
		"empty item":   {map[string]string{plan.AnnotationConfigMaps: "a,,b"}, "Warning InvalidAnnotation reroll.dev/configmaps: item 2 is empty; not rolling until it is fixed"},
		"whitespace":   {map[string]string{plan.AnnotationSecrets: "a, b"}, `Warning InvalidAnnotation reroll.dev/secrets: item 2 " b" contains whitespace; not rolling until it is fixed`},
		"duplicate":    {map[string]string{plan.AnnotationSecrets: "a,a"}, `Warning InvalidAnnotation reroll.dev/secrets: item 2 "a" is a duplicate; not rolling until it is fixed`},
		"invalid name": {map[string]string{plan.AnnotationConfigMaps: "Bad_Name"}, `Warning InvalidAnnotation reroll.dev/configmaps: item 1 "Bad_Name" is not a valid name`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, configMap("a", nil), configMap("b", nil), secret("a", nil), secret("b", nil))
			ctx := f.start()
			f.seed(deployment("web", tt.annotations, nil))
			f.sync(ctx, "web")
			f.expectWrites()
			got := f.events()
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("events = %q, want one starting %q", got, tt.want)
			}
		})
	}
}

// More than MaxReferences consumed objects: a Warning, no write.
func TestSyncTooManyReferences(t *testing.T) {
	f := newFixture(t)
	ctx := f.start()
	f.seed(deployment("web", auto(), func(s *corev1.PodSpec) {
		for i := range plan.MaxReferences + 1 {
			s.Containers[0].Env = append(s.Containers[0].Env, plantest.ConfigMapKeyEnv(fmt.Sprint("E", i), fmt.Sprint("cm-", i), "k", true))
		}
	}))
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents("Warning TooManyReferences consumes 257 ConfigMaps and Secrets, more than the 256 reroll handles; not rolling")
}

// Invariant 8: a consumed annotation made under another hash key is
// re-baselined without rolling, with an Event saying so.
func TestSyncKeyLossRebaselines(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	oldKey := testHashKey(t, 99)
	d.Annotations[plan.AnnotationConsumed] = plan.ConsumedState{KeyID: oldKey.ID(), Entries: map[string]string{"ConfigMap/cfg": "0123"}}.String()
	f.seed(d)
	f.sync(ctx, "web")
	f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
	f.expectEvents(fmt.Sprintf("Normal Rebaselined recorded a new baseline without rolling, because its reroll.dev/consumed annotation was made under hash key %s, and the current key is %s",
		oldKey.ID(), f.opts.HashKey.ID()))
}

// An unreadable consumed annotation is re-baselined, not rolled.
func TestSyncUnreadableStateRebaselines(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	d.Annotations[plan.AnnotationConsumed] = "garbage"
	f.seed(d)
	f.sync(ctx, "web")
	f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
	f.expectEvents("Normal Rebaselined recorded a new baseline without rolling, because its reroll.dev/consumed annotation is unreadable (unknown format)")
}

// A pod template edit that adds a reference records it without rolling:
// the edit itself rolled the workload.
func TestSyncReferenceAddedRecordsWithoutRolling(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "1"}), secret("s", map[string]string{"p": "x"}))
	ctx := f.start()
	d := f.adopted(deployment("web", auto(), envFromConfigMap("cfg")))
	d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{plantest.SecretKeyEnv("P", "s", "p", false)}
	f.seed(d)
	f.sync(ctx, "web")
	f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
	f.expectEvents()
}

// --dry-run writes nothing, reports what it would do, and remembers its
// would-be baseline so later changes report a would-be roll.
func TestSyncDryRun(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cm)
	f.opts.DryRun = true
	ctx := f.start()
	f.seed(deployment("web", auto(), envFromConfigMap("cfg")))
	f.sync(ctx, "web")
	f.sync(ctx, "web")
	f.seed(configMap("cfg", map[string]string{"a": "2"}))
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents(
		"Normal DryRun Dry run, would adopt: recorded a baseline of 1 consumed ConfigMaps and Secrets without rolling; changes to their content will roll this Deployment",
		"Normal DryRun Dry run, would roll: consumed content changed in ConfigMap/cfg (keys a)",
	)
}

// A conflict (the cache was stale) goes back to the queue with backoff, and
// the retry writes once.
func TestSyncConflictIsRetried(t *testing.T) {
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	f := newFixture(t, d, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	conflicts := 1
	f.client.PrependReactor("patch", "deployments", func(core.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", fmt.Errorf("the object has been modified"))
		}
		return false, nil, nil
	})
	key := deploymentKey("web")
	f.c.queue.Add(key)
	if !f.c.processNextWorkItem(ctx) {
		t.Fatal("queue shut down")
	}
	if got := f.c.queue.NumRequeues(key); got != 1 {
		t.Fatalf("requeues after a conflict = %d, want 1", got)
	}
	f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
	f.expectEvents()

	f.sync(ctx, "web") // the retry
	f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
	f.expectEvents() // adopting sends no Event
}

// A write the API server refused the connection for (it is out) is tried
// again after outageRetryDelay without growing the key's backoff, however
// many times it fails: the roll must not wait for the outage's length again
// after the server's return.
func TestSyncRetriesThroughAnOutageWithoutBackoff(t *testing.T) {
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	f := newFixture(t, d, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	refused := 3
	f.client.PrependReactor("patch", "deployments", func(core.Action) (bool, runtime.Object, error) {
		if refused > 0 {
			refused--
			return true, nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}
		return false, nil, nil
	})
	key := deploymentKey("web")
	clk := f.opts.Clock.(*testingclock.FakeClock)
	f.c.queue.Add(key)
	for attempt := 1; attempt <= 4; attempt++ {
		if attempt > 1 {
			if n := f.c.queue.Len(); n != 0 {
				t.Fatalf("after attempt %d the key is back at once, want it back after %v", attempt-1, outageRetryDelay)
			}
			// The key comes back once the (fake) clock passes the delay.
			err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
				clk.Step(outageRetryDelay / 10)
				return f.c.queue.Len() > 0, nil
			})
			if err != nil {
				t.Fatalf("the key did not come back after attempt %d: %v", attempt-1, err)
			}
		}
		if !f.c.processNextWorkItem(ctx) {
			t.Fatal("queue shut down")
		}
		if got := f.c.queue.NumRequeues(key); got != 0 {
			t.Fatalf("after attempt %d the key's backoff counts %d failures, want 0", attempt, got)
		}
	}
	adopt := f.baselinePatch("web", f.recordedState(d))
	f.expectWrites(adopt, adopt, adopt, adopt) // three refused, then the one that landed
	if f.c.queue.Len() != 0 {
		t.Errorf("the key is back in the queue after the write landed")
	}
}

// A patch the API server rejects as invalid is reported, not retried.
func TestSyncPatchRejected(t *testing.T) {
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	f := newFixture(t, d, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	f.client.PrependReactor("patch", "deployments", func(core.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", nil)
	})
	f.sync(ctx, "web")
	f.writes()
	got := f.events()
	if len(got) != 1 || !strings.HasPrefix(got[0], "Warning PatchRejected the API server rejected reroll's patch") {
		t.Errorf("events = %q", got)
	}
}

// A workload that is gone is forgotten without error.
func TestSyncDeletedWorkload(t *testing.T) {
	f := newFixture(t)
	ctx := f.start()
	f.c.memory.lastDigests.set(deploymentKey("gone"), map[plan.ConfigRef]map[string]string{})
	f.sync(ctx, "gone")
	if _, ok := f.c.memory.lastDigests.get(deploymentKey("gone")); ok {
		t.Error("a deleted workload is still remembered")
	}
	f.expectWrites()
}

// No Secret value, nor its plain digest, reaches a write or an Event.
func TestSyncNeverLeaksSecretValues(t *testing.T) {
	const value = "hunter2-very-secret"
	s := secret("db", map[string]string{"password": value})
	f := newFixture(t, s)
	ctx := f.start()
	d := f.adopted(deployment("web", auto(), func(p *corev1.PodSpec) {
		p.Containers[0].Env = []corev1.EnvVar{plantest.SecretKeyEnv("PW", "db", "password", false)}
	}))
	f.seed(d)
	f.sync(ctx, "web")
	f.seed(secret("db", map[string]string{"password": value + "!"}))
	f.sync(ctx, "web")
	writes := f.writes()
	if len(writes) != 1 {
		t.Fatalf("writes = %+v, want one roll", writes)
	}
	evs := f.events()
	for _, leak := range []string{value, plan.DigestValue(value), plan.DigestValue(value)[len(plan.DigestPrefix):], plan.DigestValue(value + "!")[len(plan.DigestPrefix):]} {
		for _, out := range append(evs, writes[0].body) {
			if strings.Contains(out, leak) {
				t.Errorf("%q leaks %q", out, leak)
			}
		}
	}
}

// StatefulSets, DaemonSets and CronJobs follow the same path as
// Deployments: adopt without rolling, then roll with one strategic merge
// patch (of a CronJob's job template: its next Job runs the new content).
func TestSyncStatefulSetsAndDaemonSets(t *testing.T) {
	template := func(name string) corev1.PodTemplateSpec {
		d := deployment(name, nil, envFromConfigMap("cfg"))
		return d.Spec.Template
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: testNamespace, Annotations: auto(), ResourceVersion: "10"}
	}
	tests := []struct {
		kind, resource string
		obj            runtime.Object
	}{
		{"StatefulSet", "statefulsets", &appsv1.StatefulSet{ObjectMeta: meta("db"), Spec: appsv1.StatefulSetSpec{Template: template("db")}}},
		{"DaemonSet", "daemonsets", &appsv1.DaemonSet{ObjectMeta: meta("agent"), Spec: appsv1.DaemonSetSpec{Template: template("agent")}}},
		{"CronJob", "cronjobs", &batchv1.CronJob{ObjectMeta: meta("report"), Spec: batchv1.CronJobSpec{Schedule: "@hourly",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template("report")}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			f := newFixture(t, tt.obj, configMap("cfg", map[string]string{"a": "1"}))
			ctx := f.start()
			m, _ := metaOf(tt.obj)
			key := workloadKey{groupKind: tt.kind, name: cache.ObjectName{Namespace: testNamespace, Name: m.GetName()}}
			state := func() string {
				d := deployment(m.GetName(), auto(), envFromConfigMap("cfg"))
				return f.recordedState(d)
			}
			if err := f.c.syncHandler(ctx, key); err != nil {
				t.Fatal(err)
			}
			adoptState := state()
			want := f.baselinePatch(m.GetName(), adoptState)
			want.resource = tt.resource
			f.expectWrites(want)
			f.expectEvents() // adopting sends no Event

			adopted := tt.obj.DeepCopyObject()
			am, _ := metaOf(adopted)
			am.SetAnnotations(map[string]string{plan.AnnotationAuto: "true", plan.AnnotationConsumed: adoptState})
			am.SetResourceVersion("11")
			f.seed(adopted)
			f.seed(configMap("cfg", map[string]string{"a": "2"}))
			if err := f.c.syncHandler(ctx, key); err != nil {
				t.Fatal(err)
			}
			want = f.rollPatch(m.GetName(), state())
			want.resource = tt.resource
			if tt.kind == "CronJob" {
				want = f.relocateTemplate(want, "spec", "jobTemplate", "spec", "template")
			}
			f.expectWrites(want)
			f.expectEvents("Normal Rolled Rolled: consumed content changed in ConfigMap/cfg (keys a)")
		})
	}
}

// An unknown kind is a clear error at start.
func TestUnknownKind(t *testing.T) {
	f := newFixture(t)
	f.opts.Kinds = []string{"deployments", "replicasets"}
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	_, err := NewController(ctx, client, nil, NewInformerFactories(client, Options{}), events.NewFakeRecorder(1), f.opts)
	if err == nil || !strings.Contains(err.Error(), `unknown kind "replicasets": the built-in kinds are deployments, statefulsets, daemonsets, cronjobs, jobs`) {
		t.Errorf("error = %v", err)
	}
}

// After a write, a sync that still sees the version reroll patched (the
// informer has not delivered the write yet) writes nothing, and the next
// version clears the guard.
func TestSyncWaitsForOwnWrite(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cm)
	ctx := f.start()
	d := f.seedAdoptedWeb()
	f.client.PrependReactor("patch", "deployments", func(core.Action) (bool, runtime.Object, error) {
		patched := d.DeepCopy()
		patched.ResourceVersion = "12"
		return true, patched, nil
	})
	f.seed(configMap("cfg", map[string]string{"a": "2"}))
	want := f.recordedState(d)
	f.sync(ctx, "web")
	f.expectWrites(f.rollPatch("web", want))
	f.expectEvents("Normal Rolled Rolled: consumed content changed in ConfigMap/cfg")

	f.sync(ctx, "web") // the cache still holds resourceVersion 11
	f.expectWrites()
	f.expectEvents()

	rolled := d.DeepCopy()
	rolled.Annotations[plan.AnnotationConsumed] = want
	rolled.ResourceVersion = "12"
	f.seed(rolled)
	f.sync(ctx, "web")
	f.expectWrites()
	if f.c.memory.writes.cacheBehindOwnWrite(deploymentKey("web"), "11") {
		t.Error("the guard outlived the write reaching the cache")
	}
}

// A replica that no longer leads (its Lease was taken) writes nothing, and
// reports no roll.
func TestSyncSkipsWritesWhenNotLeading(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cm)
	f.opts.MayWrite = func(context.Context) bool { return false }
	ctx := f.start()
	f.seedAdoptedWeb()
	f.seed(configMap("cfg", map[string]string{"a": "2"}))
	f.sync(ctx, "web")
	f.expectWrites()
	f.expectEvents()
	if got := f.scrape(`reroll_rollouts_total{kind="Deployment",namespace="team-a"}`); got != "" && got != "0" {
		t.Errorf("rollouts counted: %s", got)
	}
}

// TestSyncIgnoreRemovedRollsChangedContent: content that changed while the
// ConfigMap was ignored rolls its consumer once when the annotation goes,
// and not again after.
func TestSyncIgnoreRemovedRollsChangedContent(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cm)
	ctx := f.start()
	f.seedAdoptedWeb()
	ignored := cm.DeepCopy()
	ignored.Annotations = map[string]string{plan.AnnotationIgnore: "true"}
	ignored.Data["a"] = "2"
	f.seed(ignored)
	f.sync(ctx, "web")
	f.expectWrites()

	f.seed(configMap("cfg", map[string]string{"a": "2"}))
	f.sync(ctx, "web")
	w := f.writes()
	if len(w) != 1 || !strings.Contains(w[0].body, plan.AnnotationConfigHash) {
		t.Fatalf("removing the ignore annotation wrote %v, want one roll", w)
	}
	d, _ := f.client.Tracker().Get(gvrOf(&appsv1.Deployment{}), testNamespace, "web")
	rolled := d.(*appsv1.Deployment).DeepCopy()
	rolled.ResourceVersion = "30"
	f.seed(rolled)
	f.sync(ctx, "web")
	f.expectWrites()
}
