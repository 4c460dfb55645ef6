package controller

import (
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/reroll/reroll/pkg/plan"
)

// Why a memo: every sync of a workload that a change with waves rolls
// gathers the facts of all the change's consumers (gather.go): the wave
// order needs them all. In a fan-out of one change to n workloads that is
// n syncs of n consumers each: parsing n opt-in annotations and rollout
// records, and hashing n consumed states, per sync. (A change without
// waves reads only the few consumers canFailIndex holds.) Between two syncs of the
// fan-out only a few consumers change (the one just rolled, a status or
// two), so the facts of the others are remembered, per change, as of the
// resourceVersion they were read at. A sync then reads only the consumers
// whose objects changed since, and the facts the rules see are the same as
// if each had been read afresh. Only the rollout state, which depends on
// the time, is computed each sync, from the cached status.

// maxMemoChanges is how many changes the memo remembers the consumers of.
// A fan-out judges one change over and over; a few more cover changes
// rolling at the same time. Forgetting costs only a re-read.
const maxMemoChanges = 8

// changeKey names one change as its consumers' facts were read for it:
// the object, its change, the cached object (UID and resourceVersion) whose
// digests decide whether the change rolls a consumer, and whether it rolls
// in waves (the only case that reads those digests and the priorities).
type changeKey struct {
	namespace       string
	ref             plan.ConfigRef
	change          plan.ChangeID
	uid             types.UID
	resourceVersion string
	withWaves       bool
}

// consumerFactsMemo remembers, for the last few changes judged, the facts
// of their consumers. It is safe for concurrent use: workers judging the
// same change share it.
type consumerFactsMemo struct {
	mu sync.Mutex
	// changes are the remembered changes; order lists them, the least
	// recently used first.
	changes map[changeKey]*changeFacts
	order   []changeKey
}

// newConsumerFactsMemo returns an empty memo.
func newConsumerFactsMemo() *consumerFactsMemo {
	return &consumerFactsMemo{changes: map[changeKey]*changeFacts{}}
}

// forChange returns the remembered facts of change k's consumers, empty for
// a change not remembered, and forgets the least recently used change when
// more than maxMemoChanges are remembered.
func (m *consumerFactsMemo) forChange(k changeKey) *changeFacts {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i := slices.Index(m.order, k); i >= 0 {
		m.order = append(slices.Delete(m.order, i, i+1), k)
		return m.changes[k]
	}
	cf := &changeFacts{byWorkload: map[workloadKey]consumerMemo{}}
	m.changes[k] = cf
	m.order = append(m.order, k)
	if len(m.order) > maxMemoChanges {
		delete(m.changes, m.order[0])
		m.order = slices.Delete(m.order, 0, 1)
	}
	return cf
}

// consumerMemo is what is remembered of one workload indexed as a consumer
// of a change, as of one version of its cached object.
type consumerMemo struct {
	uid             types.UID
	resourceVersion string
	// optedIn: it is opted in, so the rules see it (see consumersOf).
	optedIn bool
	// facts are its facts for the change, but for its rollout's state,
	// which the judge gives at each sync's time from rolled and its bake
	// time.
	facts  plan.ConsumerFacts
	rolled rolled
	bake   time.Duration
}

// changeFacts are the remembered facts of one change's consumers, by
// workload.
type changeFacts struct {
	mu         sync.Mutex
	byWorkload map[workloadKey]consumerMemo
}

// get returns the facts of workload key remembered as of the version uid
// and resourceVersion of its object, if they are.
func (cf *changeFacts) get(key workloadKey, uid types.UID, resourceVersion string) (consumerMemo, bool) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	m, ok := cf.byWorkload[key]
	return m, ok && m.uid == uid && m.resourceVersion == resourceVersion
}

// put remembers m as the facts of workload key.
func (cf *changeFacts) put(key workloadKey, m consumerMemo) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	cf.byWorkload[key] = m
}

// trim forgets everything once the memo holds far more workloads than the
// n the change's consumers index holds now: those gone, or no longer
// consumers, would otherwise stay as long as the change is judged. The
// next sync reads them all again.
func (cf *changeFacts) trim(n int) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if len(cf.byWorkload) > 2*n+16 {
		cf.byWorkload = map[workloadKey]consumerMemo{}
	}
}
