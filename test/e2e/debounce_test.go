//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// rollWatcher records, through a watch, when a Deployment's pod template
// config hash changes: when reroll's roll reaches the API server.
type rollWatcher struct {
	t  *testing.T
	mu sync.Mutex
	// rolls holds when each roll was seen.
	rolls []time.Time
}

// watchRolls starts a rollWatcher on one Deployment; it stops at cleanup.
func watchRolls(t *testing.T, ns, name string) *rollWatcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := testEnv.client.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &rollWatcher{t: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		last, seen := "", false
		for e := range w.ResultChan() {
			d, ok := e.Object.(*appsv1.Deployment)
			if !ok || e.Type == watch.Deleted {
				continue
			}
			hash := d.Spec.Template.Annotations[annotationConfigHash]
			if seen && hash != last {
				r.mu.Lock()
				r.rolls = append(r.rolls, time.Now())
				r.mu.Unlock()
			}
			last, seen = hash, true
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		cancel()
		<-done
	})
	return r
}

// seen returns the rolls seen so far.
func (r *rollWatcher) seen() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.rolls...)
}

// waitRolls waits until at least n rolls were seen and returns when the
// n-th was.
func (r *rollWatcher) waitRolls(n int) time.Time {
	r.t.Helper()
	waitFor(r.t, fmt.Sprintf("%d rolls", n), func(context.Context) (bool, error) {
		return len(r.seen()) >= n, nil
	})
	return r.seen()[n-1]
}

// Invariant 2, against reroll's own write: a burst of changes (a ConfigMap,
// then a Secret 300ms later) that starts 700, 850 or 950ms after reroll
// rolled the workload, so while the update of that roll still has the
// workload queued, rolls it once, a debounce after the burst's first
// change. (Issue 10: the same runs used to roll twice.)
func TestBurstSoonAfterRollRollsOnce(t *testing.T) {
	t.Parallel()
	const debounce = time.Second
	ns := newNamespace(t)
	delays := []time.Duration{700 * time.Millisecond, 850 * time.Millisecond, 950 * time.Millisecond}
	for i := range delays {
		name := fmt.Sprint("x-", i)
		create(t, configMap(ns, name, map[string]string{"k": "0"}), secret(ns, name, map[string]string{"k": "0"}),
			testDeployment(ns, name, auto(), both(envFrom(name), secretVolume(name))))
	}
	b := newBarrier(t, ns)
	startReroll(t, ns, "--debounce="+debounce.String())
	for i := range delays {
		waitAdopted(t, ns, fmt.Sprint("x-", i))
	}

	for i, d := range delays {
		name := fmt.Sprint("x-", i)
		w := watchRolls(t, ns, name)
		updateConfigMap(t, ns, name, func(cm *corev1.ConfigMap) { cm.Data["k"] = "previous" })
		previous := w.waitRolls(1)

		// The burst: d after the previous roll was seen.
		time.Sleep(time.Until(previous.Add(d)))
		burst := time.Now()
		updateConfigMap(t, ns, name, func(cm *corev1.ConfigMap) { cm.Data["k"] = "burst" })
		time.Sleep(300 * time.Millisecond)
		updateSecret(t, ns, name, func(s *corev1.Secret) { s.Data["k"] = []byte("burst") })
		rolled := w.waitRolls(2)
		b.wait() // everything queued before the barrier's change is synced

		if n := len(w.seen()) - 1; n != 1 {
			t.Errorf("burst %v after the previous roll rolled %s %d times, want once", d, name, n)
		}
		if after := rolled.Sub(burst); after < debounce {
			t.Errorf("burst %v after the previous roll rolled %s %v after its first change, sooner than the %v debounce", d, name, after, debounce)
		} else {
			t.Logf("burst %v after the previous roll: rolled once, %v after its first change", d, after.Round(time.Millisecond))
		}
		// kube-controller-manager rolls out the burst's template. Not a
		// count of ReplicaSets: when it syncs the Deployment after both
		// rolls it creates one for the last template only (CI: x-0 kept 2).
		waitTemplateRolledOut(t, ns, name)
	}
}
