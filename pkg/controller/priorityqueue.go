package controller

import (
	"slices"

	"k8s.io/client-go/util/workqueue"
)

// priorityQueue is the store under the controller's workqueue: two FIFOs,
// urgent keys before the rest. client-go's workqueue keeps its own
// semantics on top (each key at most once in the store, one worker per
// key, delays, rate limits); this only chooses which waiting key goes
// next. A key is urgent when a consumed change is pending for it (see
// changes.go), so a config change is never stuck behind a start-up's
// adoption writes or a resync.
//
// It is called only under the workqueue's lock, so it needs none itself.
type priorityQueue struct {
	isUrgent func(workloadKey) bool
	urgent   []workloadKey
	normal   []workloadKey
	// promoted counts, per key, the copies in normal left behind when the
	// key moved to urgent; Pop skips them. They always come before any
	// later copy of the key, which is pushed at the end.
	promoted map[workloadKey]int
	stale    int
}

var _ workqueue.Queue[workloadKey] = (*priorityQueue)(nil)

// newPriorityQueue returns an empty queue that asks isUrgent where a key
// goes.
func newPriorityQueue(isUrgent func(workloadKey) bool) *priorityQueue {
	return &priorityQueue{isUrgent: isUrgent, promoted: map[workloadKey]int{}}
}

// Push adds a key that is not in the queue.
func (q *priorityQueue) Push(key workloadKey) {
	if q.isUrgent(key) {
		q.urgent = append(q.urgent, key)
	} else {
		q.normal = append(q.normal, key)
	}
}

// Touch is called when a key already waiting in the queue is added again:
// it moves the key to the urgent FIFO if it has become urgent. The copy
// left in the normal FIFO is skipped later rather than searched for now.
func (q *priorityQueue) Touch(key workloadKey) {
	if !q.isUrgent(key) || q.inUrgent(key) {
		return
	}
	q.urgent = append(q.urgent, key)
	q.promoted[key]++
	q.stale++
}

// inUrgent reports whether key waits in the urgent FIFO. A touched key
// waits in the queue exactly once, so otherwise it waits in the normal one.
func (q *priorityQueue) inUrgent(key workloadKey) bool {
	return slices.Contains(q.urgent, key)
}

// Len returns the number of keys waiting.
func (q *priorityQueue) Len() int {
	return len(q.urgent) + len(q.normal) - q.stale
}

// Pop removes and returns the next key: the oldest urgent one, else the
// oldest other one. The workqueue calls it only when Len is positive.
func (q *priorityQueue) Pop() workloadKey {
	if len(q.urgent) > 0 {
		key := q.urgent[0]
		q.urgent[0] = workloadKey{}
		q.urgent = q.urgent[1:]
		return key
	}
	for {
		key := q.normal[0]
		q.normal[0] = workloadKey{}
		q.normal = q.normal[1:]
		if n := q.promoted[key]; n > 0 {
			// The key went to the urgent FIFO and was handed out from
			// there; this is the copy it left behind.
			if n == 1 {
				delete(q.promoted, key)
			} else {
				q.promoted[key] = n - 1
			}
			q.stale--
			continue
		}
		return key
	}
}
