package controller

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/plan/plantest"
)

func TestCalculateBurstWait(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		now      time.Time
		debounce time.Duration
		want     time.Duration
	}{
		{"at the first change", start, time.Second, time.Second},
		{"inside the window", start.Add(300 * time.Millisecond), time.Second, 700 * time.Millisecond},
		{"at the end of the window", start.Add(time.Second), time.Second, 0},
		{"after the window", start.Add(5 * time.Second), time.Second, 0},
		{"no debounce", start, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := calculateBurstWait(start, tt.now, tt.debounce); got != tt.want {
				t.Errorf("calculateBurstWait = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBurstTracker(t *testing.T) {
	clk := testingclock.NewFakePassiveClock(time.Now())
	key, other := deploymentKey("web"), deploymentKey("other")
	b := newBurstTracker(clk)
	if got := b.take(key); got != 0 {
		t.Errorf("take without a burst = %v, want 0", got)
	}
	b.changed(key, time.Second)
	clk.SetTime(clk.Now().Add(600 * time.Millisecond))
	b.changed(key, time.Second) // joins the burst: its window still ends 1s after the first change
	if got := b.take(key); got != 400*time.Millisecond {
		t.Errorf("take inside the window = %v, want 400ms", got)
	}
	if got := b.take(other); got != 0 {
		t.Errorf("another workload's take = %v, want 0", got)
	}
	clk.SetTime(clk.Now().Add(400 * time.Millisecond))
	if got := b.take(key); got != 0 {
		t.Errorf("take at the end of the window = %v, want 0", got)
	}
	b.changed(key, 5*time.Second) // a new burst, of a workload's own window
	if got := b.take(key); got != 5*time.Second {
		t.Errorf("take at the start of a new burst = %v, want 5s", got)
	}
	b.cancel(key)
	if got := b.take(key); got != 0 {
		t.Errorf("take after forget = %v, want 0", got)
	}
	b.changed(other, 0)
	if got := b.take(other); got != 0 {
		t.Errorf("take without debounce = %v, want 0", got)
	}
}

// steppedQueue is the controller's queue with its delays driven by a test,
// step by step: the real queue's de-duplication and one-worker-per-key
// processing (workqueue.Typed), with AddAfter keeping the earliest due time
// of a key as workqueue's delaying queue does, and retries delayed by the
// controller's per-key backoff. Keys become ready only in promote, so a test
// needs no goroutine and no sleep to see them.
type steppedQueue struct {
	workqueue.TypedInterface[workloadKey]
	clock   clock.PassiveClock
	limiter workqueue.TypedRateLimiter[workloadKey]

	mu      sync.Mutex
	waiting map[workloadKey]time.Time
}

// newSteppedQueue returns an empty steppedQueue on clk.
func newSteppedQueue(clk clock.WithTicker) *steppedQueue {
	return &steppedQueue{
		TypedInterface: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[workloadKey]{Clock: clk}),
		clock:          clk,
		limiter:        workqueue.NewTypedItemExponentialFailureRateLimiter[workloadKey](retryBaseDelay, retryMaxDelay),
		waiting:        map[workloadKey]time.Time{},
	}
}

// AddAfter adds key once delay has passed, or keeps an earlier due time.
func (q *steppedQueue) AddAfter(key workloadKey, delay time.Duration) {
	if delay <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	due := q.clock.Now().Add(delay)
	if cur, ok := q.waiting[key]; !ok || due.Before(cur) {
		q.waiting[key] = due
	}
}

// AddRateLimited adds key after its backoff.
func (q *steppedQueue) AddRateLimited(key workloadKey) { q.AddAfter(key, q.limiter.When(key)) }

// Forget resets key's backoff.
func (q *steppedQueue) Forget(key workloadKey) { q.limiter.Forget(key) }

// NumRequeues returns how often key was retried.
func (q *steppedQueue) NumRequeues(key workloadKey) int { return q.limiter.NumRequeues(key) }

// promote adds every waiting key that is due.
func (q *steppedQueue) promote() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for key, due := range q.waiting {
		if !now.Before(due) {
			delete(q.waiting, key)
			q.Add(key)
		}
	}
}

// burstRun drives one workload, "web", through time on a fake clock: it
// syncs what the queue hands out, delivers reroll's writes back to the
// cache as the informer would, and records when each roll was written.
type burstRun struct {
	t     *testing.T
	f     *fixture
	ctx   context.Context
	clock *testingclock.FakeClock
	queue *steppedQueue
	// epoch is time zero of the test's timeline.
	epoch time.Time
	// rolls holds when, after epoch, each roll was written, and its state.
	rolls      []time.Duration
	rollStates []string
	// failPatches makes this many patches fail with a server error.
	failPatches int
	cm, secret  runtime.Object
	version     int
}

// burstTick is how far the clock moves between two looks at the queue.
const burstTick = 5 * time.Millisecond

// newBurstRun starts a fixture with a 1s debounce: Deployment "web"
// consumes every key of ConfigMap "cfg" and key "p" of Secret "s".
// adopted seeds web as reroll leaves it after adoption.
func newBurstRun(t *testing.T, adopted bool) *burstRun {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := &burstRun{t: t, clock: clk, epoch: clk.Now(), version: 20,
		cm: configMap("cfg", map[string]string{"a": "0"}), secret: secret("s", map[string]string{"p": "0"})}
	r.f = newFixture(t, r.cm, r.secret)
	r.f.opts.Debounce = time.Second
	r.f.opts.Clock = clk
	r.ctx = r.f.start()
	r.queue = newSteppedQueue(clk)
	r.f.c.queue = r.queue
	web := deployment("web", auto(), func(p *corev1.PodSpec) {
		envFromConfigMap("cfg")(p)
		p.Containers[0].Env = []corev1.EnvVar{plantest.SecretKeyEnv("P", "s", "p", false)}
	})
	if adopted {
		web = r.f.adopted(web)
	}
	r.f.seed(web)
	// Reactors run newest first: a failing patch never reaches the recorder.
	r.f.client.PrependReactor("patch", "deployments", func(a core.Action) (bool, runtime.Object, error) {
		body := string(a.(core.PatchAction).GetPatch())
		if strings.Contains(body, plan.AnnotationConfigHash) {
			r.rolls = append(r.rolls, r.clock.Since(r.epoch))
			r.rollStates = append(r.rollStates, body)
		}
		return false, nil, nil
	})
	r.f.client.PrependReactor("patch", "deployments", func(core.Action) (bool, runtime.Object, error) {
		if r.failPatches > 0 {
			r.failPatches--
			return true, nil, apierrors.NewInternalError(errors.New("etcd is having a moment"))
		}
		return false, nil, nil
	})
	return r
}

// handler returns the Deployment informer's event handler.
func (r *burstRun) handler() cacheHandler {
	k, _ := r.f.c.view.kinds.get("Deployment")
	return r.f.c.workloadHandler(r.ctx, k)
}

// cacheHandler is the subset of cache.ResourceEventHandler the run calls.
type cacheHandler interface {
	OnAdd(obj any, isInInitialList bool)
	OnUpdate(oldObj, newObj any)
}

// cachedWeb returns web as the cache holds it.
func (r *burstRun) cachedWeb() *cachedWorkload {
	obj, _, err := r.f.factory.Apps().V1().Deployments().Informer().GetIndexer().GetByKey(testNamespace + "/web")
	if err != nil || obj == nil {
		r.t.Fatalf("web is not cached: %v", err)
	}
	return obj.(*cachedWorkload)
}

// serverWeb returns web as the fake API server holds it.
func (r *burstRun) serverWeb() *appsv1.Deployment {
	obj, err := r.f.client.Tracker().Get(gvrOf(&appsv1.Deployment{}), testNamespace, "web")
	if err != nil {
		r.t.Fatal(err)
	}
	return obj.(*appsv1.Deployment)
}

// updateWeb stores a new version of web, with a new resourceVersion, and
// delivers it to the cache and the handler as the informer would.
func (r *burstRun) updateWeb(d *appsv1.Deployment) {
	r.version++
	d.ResourceVersion = strconv.Itoa(r.version)
	old := r.cachedWeb()
	r.f.seed(d)
	r.handler().OnUpdate(old, r.cachedWeb())
}

// deliverWrites delivers reroll's writes to web (the fake API server does
// not version objects, so a changed annotation is how a write shows).
func (r *burstRun) deliverWrites() {
	d := r.serverWeb()
	if !maps.Equal(d.Annotations, r.cachedWeb().Annotations) {
		r.updateWeb(d.DeepCopy())
	}
}

// process syncs every key that is due now, as the workers would.
func (r *burstRun) process() {
	r.t.Helper()
	for range 100 {
		r.queue.promote()
		if r.queue.Len() == 0 {
			return
		}
		r.f.c.processNextWorkItem(r.ctx)
		r.deliverWrites()
	}
	r.t.Fatal("the queue never emptied: a sync requeues itself at once")
}

// advanceTo moves the clock to offset after the epoch, syncing what comes
// due on the way.
func (r *burstRun) advanceTo(offset time.Duration) {
	r.t.Helper()
	r.process()
	for r.clock.Since(r.epoch) < offset {
		r.clock.Step(min(burstTick, offset-r.clock.Since(r.epoch)))
		r.process()
	}
}

// changeConfigMap sets ConfigMap cfg's key a to value and delivers the
// change to the handler, as the informer would.
func (r *burstRun) changeConfigMap(value string) {
	next := configMap("cfg", map[string]string{"a": value})
	r.f.seed(next)
	configHandler[*corev1.ConfigMap](r.ctx, r.f.c, plan.TypeConfigMap).OnUpdate(
		cachedCopy(r.cm).(*corev1.ConfigMap), cachedCopy(next).(*corev1.ConfigMap))
	r.cm = next
}

// changeSecret is changeConfigMap for Secret s's key p.
func (r *burstRun) changeSecret(value string) {
	next := secret("s", map[string]string{"p": value})
	r.f.seed(next)
	configHandler[*corev1.Secret](r.ctx, r.f.c, plan.TypeSecret).OnUpdate(
		cachedCopy(r.secret).(*corev1.Secret), cachedCopy(next).(*corev1.Secret))
	r.secret = next
}

// Invariant 2, against what was queued before: a burst (the ConfigMap,
// then the Secret 300ms later) that starts shortly after something else
// queued the workload rolls it once, no sooner than the debounce after the
// burst's first change, to the content current then.
func TestBurstRollsOnceWhateverWasQueued(t *testing.T) {
	const debounce = time.Second
	// Each source queues web at entry, 2s into the timeline.
	const entry = 2 * time.Second
	sources := []struct {
		name    string
		adopted bool
		// queue makes the earlier queue entry at time entry.
		queue func(r *burstRun)
		// rollsBefore is how many rolls the source itself makes before the
		// burst starts (when it does not merge into the burst).
		rollsBefore int
	}{
		{"reroll's own write of an earlier roll", true, func(r *burstRun) {
			r.changeConfigMap("earlier")
			r.advanceTo(entry) // the earlier change rolls at entry; its write is delivered
		}, 1},
		{"adoption", false, func(r *burstRun) {
			r.advanceTo(entry)
			r.handler().OnAdd(r.cachedWeb(), false) // adopted at once; its write is delivered
			r.process()
		}, 0},
		{"workload update", true, func(r *burstRun) {
			r.advanceTo(entry)
			d := r.serverWeb().DeepCopy()
			d.Generation++
			d.Spec.Template.Spec.Containers[0].Image = "app:2"
			r.updateWeb(d)
		}, 0},
		{"resync", true, func(r *burstRun) {
			r.advanceTo(entry)
			r.handler().OnUpdate(r.cachedWeb(), r.cachedWeb())
		}, 0},
		{"retry after an error", true, func(r *burstRun) {
			r.changeConfigMap("earlier")
			r.failPatches = 3 // the earlier roll fails at entry, retries after 5, 10 and 20ms
			r.advanceTo(entry)
		}, 1},
	}
	for _, src := range sources {
		for _, d := range []time.Duration{0, 300 * time.Millisecond, 700 * time.Millisecond, 950 * time.Millisecond} {
			t.Run(src.name+"/burst after "+d.String(), func(t *testing.T) {
				r := newBurstRun(t, src.adopted)
				r.advanceTo(entry - debounce)
				src.queue(r)
				if r.clock.Since(r.epoch) != entry {
					t.Fatalf("the source ended at %v, want %v", r.clock.Since(r.epoch), entry)
				}
				burst := entry + d
				r.advanceTo(burst)
				before := len(r.rolls)
				r.changeConfigMap("burst")
				r.advanceTo(burst + 300*time.Millisecond)
				r.changeSecret("burst")
				r.advanceTo(burst + 3*debounce)

				// A source that rolls before the burst may be held into it when
				// the burst starts before its retry: then the two merge.
				if before > src.rollsBefore {
					t.Errorf("%d rolls before the burst, want at most %d", before, src.rollsBefore)
				}
				during := r.rolls[before:]
				if len(during) != 1 {
					t.Fatalf("the burst rolled %d times (at %v), want once", len(during), during)
				}
				// No sooner than the debounce; later only by the retries left of a
				// failing source (5ms, then 10ms).
				if during[0] < burst+debounce || during[0] > burst+debounce+50*time.Millisecond {
					t.Errorf("the burst rolled at %v, want at %v (the debounce after its first change)", during[0], burst+debounce)
				}
				var last struct {
					Metadata struct {
						Annotations map[string]string `json:"annotations"`
					} `json:"metadata"`
				}
				if err := json.Unmarshal([]byte(r.rollStates[len(r.rollStates)-1]), &last); err != nil {
					t.Fatal(err)
				}
				if got, want := last.Metadata.Annotations[plan.AnnotationConsumed], r.f.recordedState(r.serverWeb()); got != want {
					t.Errorf("the last roll recorded\n %s\nwant the content current at its time\n %s", got, want)
				}
			})
		}
	}
}
