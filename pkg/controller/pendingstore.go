package controller

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// Why pending changes are written down.
//
// A change that arrives while some of its consumers are not adopted yet
// keeps, in the change tracker, the object as it was before the change
// (changes.go): that is what those consumers' Pods run. A crash loses that
// memory, and the restarted reroll would adopt the new content as their
// baseline and never roll them. So each such change is also written, once,
// to one Secret in reroll's own namespace: the object before the change
// (its per-key digests and reroll's annotations, as cached) and the
// consumers not adopted then. A restart reads it back before any worker
// runs, and those consumers still not adopted compare against it.
//
// The writes are bounded by the changes, not by the workloads: one write
// holds every change recorded since the last one, and a change whose
// consumers have all been settled is dropped at the next write. No roll is
// written while a change it may have come from is not durable yet (flush),
// so once any consumer rolled for a change, the others are safe.

// pendingStoreDataKey is the key of the Secret's data that holds the
// pending changes: gzipped JSON (storedChanges).
const pendingStoreDataKey = "changes.json.gz"

// maxPendingStoreBytes keeps the Secret well under the API server's 1 MiB
// object limit; changes beyond it stay in memory only, with a log line.
const maxPendingStoreBytes = 900 << 10

// pendingRecord is one change of a ConfigMap or Secret, as stored: the
// object before the change, and the consumers not adopted then that still
// wait for their first sync against it.
type pendingRecord struct {
	namespace string
	ref       plan.ConfigRef
	before    metav1.Object
	workloads []workloadKey
}

// id is what tells two records apart: one object's content before one
// change (its resourceVersion then).
func (r *pendingRecord) id() string {
	return r.namespace + "/" + r.ref.String() + "@" + r.before.GetResourceVersion()
}

// pendingStore keeps the pending changes in a Secret (see above). Records
// are added by the event handlers and dropped when settled; one goroutine
// (run) writes them. It is safe for concurrent use.
type pendingStore struct {
	client       kubernetes.Interface
	namespace    string
	name         string
	fieldManager string
	// mayWrite is Options.MayWrite: only the leader writes.
	mayWrite func(context.Context) bool
	// stillPending reports whether a consumer still waits for its sync
	// against a record's object (the change tracker knows).
	stillPending func(key workloadKey, ref plan.ConfigRef, beforeRV string) bool
	// writes counts the Secret writes, for reroll_pending_change_writes_total.
	writes func()

	mu      sync.Mutex
	records []*pendingRecord
	// version counts the changes to records; written is the version the
	// Secret holds, and wrote is closed (and replaced) at each write.
	version, written uint64
	wrote            chan struct{}
	// kick wakes the writer; compact asks it to drop settled records.
	kick    chan struct{}
	compact bool
}

// newPendingStore returns the store of the Secret namespace/name. With an
// empty name nothing is ever written (a dry run, or a test): changes then
// stay in memory only.
func newPendingStore(client kubernetes.Interface, namespace, name, fieldManager string) *pendingStore {
	return &pendingStore{client: client, namespace: namespace, name: name, fieldManager: fieldManager,
		wrote: make(chan struct{}), kick: make(chan struct{}, 1), writes: func() {}}
}

// enabled reports whether the store writes anything.
func (s *pendingStore) enabled() bool {
	return s.name != ""
}

// add records a change of ref in namespace whose consumers in workloads
// were not adopted: before is the object before the change, as cached. Only
// ConfigMaps and Secrets have one.
func (s *pendingStore) add(namespace string, ref plan.ConfigRef, before metav1.Object, workloads []workloadKey) {
	if !s.enabled() || len(workloads) == 0 {
		return
	}
	switch before.(type) {
	case *corev1.ConfigMap, *corev1.Secret:
	default:
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.merge(&pendingRecord{namespace: namespace, ref: ref, before: before, workloads: workloads})
	s.version++
	s.wake()
}

// merge adds rec to the records, or its workloads to the record of the
// same change; s.mu is held. Records are replaced, never changed, so a
// writer's copy of the list stays as it was.
func (s *pendingStore) merge(rec *pendingRecord) {
	i := slices.IndexFunc(s.records, func(r *pendingRecord) bool { return r.id() == rec.id() })
	if i < 0 {
		s.records = append(s.records, rec)
		return
	}
	merged := *s.records[i]
	merged.workloads = slices.Clone(merged.workloads)
	for _, k := range rec.workloads {
		if !slices.Contains(merged.workloads, k) {
			merged.workloads = append(merged.workloads, k)
		}
	}
	s.records[i] = &merged
}

// settled asks the writer to drop the records whose consumers have all
// been synced against them, at its next write.
func (s *pendingStore) settled() {
	if !s.enabled() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.records) == 0 {
		return
	}
	s.compact = true
	s.wake()
}

// wake nudges the writer; s.mu is held.
func (s *pendingStore) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flush returns once every change added before it was called is in the
// Secret, or ctx is done. A roll calls it first (see above).
func (s *pendingStore) flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.version
	for s.written < target {
		wrote := s.wrote
		s.mu.Unlock()
		select {
		case <-wrote:
		case <-ctx.Done():
			return fmt.Errorf("waiting for pending changes to be written to Secret %s/%s: %w", s.namespace, s.name, context.Cause(ctx))
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// run writes the records whenever they change, until ctx is done, retrying
// a failed write with a backoff.
func (s *pendingStore) run(ctx context.Context) {
	if !s.enabled() {
		return
	}
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 12, Cap: 30 * time.Second}
	retry := backoff
	for {
		var delay <-chan time.Time
		if s.behind() {
			delay = time.After(0)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-delay:
		}
		if err := s.writeOnce(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Writing pending changes; retrying", "secret", klog.KRef(s.namespace, s.name))
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry.Step()):
			}
			continue
		}
		retry = backoff
	}
}

// behind reports whether the Secret lags the records.
func (s *pendingStore) behind() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written < s.version || s.compact
}

// writeOnce drops settled records, then writes the records if the Secret
// does not hold them yet.
func (s *pendingStore) writeOnce(ctx context.Context) error {
	s.mu.Lock()
	if s.compact {
		s.compact = false
		if kept := s.unsettled(); !slices.Equal(kept, s.records) {
			s.records = kept
			s.version++
		}
	}
	version, records := s.version, slices.Clone(s.records)
	behind := s.written < version
	s.mu.Unlock()
	if !behind {
		return nil
	}
	if s.mayWrite != nil && !s.mayWrite(ctx) {
		return fmt.Errorf("not leading: the pending changes are written by the leader")
	}
	data, err := encodePendingRecords(records)
	if err != nil {
		return err
	}
	tooLarge := len(data) > maxPendingStoreBytes
	if tooLarge {
		err = fmt.Errorf("%d pending changes take %d bytes, more than one Secret holds", len(records), len(data))
	} else {
		err = s.put(ctx, data)
	}
	switch {
	case err == nil:
	case tooLarge, apierrors.IsForbidden(err), apierrors.IsInvalid(err), apierrors.IsRequestEntityTooLargeError(err):
		// Retrying cannot help, and rolls must not wait for it: the
		// changes stay in memory only, as before reroll wrote them down.
		klog.FromContext(ctx).Error(err, "Keeping pending changes in memory only: a crash now would adopt their consumers' new content as their baseline",
			"secret", klog.KRef(s.namespace, s.name), "records", len(records), "bytes", len(data))
	default:
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written = version
	close(s.wrote)
	s.wrote = make(chan struct{})
	return nil
}

// unsettled returns the records that some consumer still waits for; s.mu
// is held. A record is dropped whole, when none waits, never shrunk one
// consumer at a time: that would be a write per workload.
func (s *pendingStore) unsettled() []*pendingRecord {
	var kept []*pendingRecord
	for _, r := range s.records {
		if slices.ContainsFunc(r.workloads, func(k workloadKey) bool {
			return s.stillPending(k, r.ref, r.before.GetResourceVersion())
		}) {
			kept = append(kept, r)
		}
	}
	return kept
}

// put writes data to the Secret, creating it on the first write.
func (s *pendingStore) put(ctx context.Context, data []byte) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "reroll", "app.kubernetes.io/component": "pending-changes"}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{pendingStoreDataKey: data},
	}
	secrets := s.client.CoreV1().Secrets(s.namespace)
	s.writes()
	// Unconditional: only the leader writes this Secret, and what it
	// writes is all it knows.
	_, err := secrets.Update(ctx, secret, metav1.UpdateOptions{FieldManager: s.fieldManager})
	if apierrors.IsNotFound(err) {
		s.writes()
		_, err = secrets.Create(ctx, secret, metav1.CreateOptions{FieldManager: s.fieldManager})
	}
	if err != nil {
		return fmt.Errorf("writing pending changes to Secret %s/%s: %w", s.namespace, s.name, err)
	}
	return nil
}

// load reads the records the Secret holds, as a previous run of reroll
// wrote them, and keeps them as its own. A Secret that cannot be decoded
// is reported and ignored: it cannot be repaired, and waiting would stop
// reroll for good.
func (s *pendingStore) load(ctx context.Context) ([]*pendingRecord, error) {
	if !s.enabled() {
		return nil, nil
	}
	secret, err := s.client.CoreV1().Secrets(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pending changes from Secret %s/%s: %w", s.namespace, s.name, err)
	}
	records, err := decodePendingRecords(secret.Data[pendingStoreDataKey])
	if err != nil {
		klog.FromContext(ctx).Error(err, "Ignoring unreadable pending changes", "secret", klog.KObj(secret))
		return nil, nil
	}
	return records, nil
}

// keep makes records, read by load and filtered by the caller, the store's
// own, with any recorded since (a standby records changes before it
// leads); the next write drops what load read and the caller did not keep.
func (s *pendingStore) keep(records []*pendingRecord) {
	if !s.enabled() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		s.merge(r)
	}
	s.version++
	s.wake()
}

// storedChange is the JSON form of a pendingRecord.
type storedChange struct {
	Namespace string          `json:"namespace"`
	Type      plan.ConfigType `json:"type"`
	Name      string          `json:"name"`
	// Before is the cached object before the change: per-key digests and
	// reroll's annotations, never a value.
	Before json.RawMessage `json:"before"`
	// Workloads are "Kind.group/namespace/name".
	Workloads []string `json:"workloads"`
}

// encodePendingRecords returns the gzipped JSON of records.
func encodePendingRecords(records []*pendingRecord) ([]byte, error) {
	stored := make([]storedChange, 0, len(records))
	for _, r := range records {
		before, err := json.Marshal(r.before)
		if err != nil {
			return nil, err
		}
		workloads := make([]string, len(r.workloads))
		for i, k := range r.workloads {
			workloads[i] = k.groupKind + "/" + k.name.String()
		}
		stored = append(stored, storedChange{Namespace: r.namespace, Type: r.ref.Type, Name: r.ref.Name, Before: before, Workloads: workloads})
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(stored); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodePendingRecords parses what encodePendingRecords wrote; empty data
// holds no record.
func decodePendingRecords(data []byte) ([]*pendingRecord, error) {
	if len(data) == 0 {
		return nil, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var stored []storedChange
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, err
	}
	records := make([]*pendingRecord, 0, len(stored))
	for _, sc := range stored {
		r, err := sc.record()
		if err != nil {
			return nil, err
		}
		records = append(records, r)
	}
	return records, nil
}

// record returns the pendingRecord sc stores.
func (sc storedChange) record() (*pendingRecord, error) {
	var before metav1.Object
	switch sc.Type {
	case plan.TypeConfigMap:
		before = &corev1.ConfigMap{}
	case plan.TypeSecret:
		before = &corev1.Secret{}
	default:
		return nil, fmt.Errorf("pending change of %s %s/%s: not a ConfigMap or Secret", sc.Type, sc.Namespace, sc.Name)
	}
	if err := json.Unmarshal(sc.Before, before); err != nil {
		return nil, fmt.Errorf("pending change of %s %s/%s: %w", sc.Type, sc.Namespace, sc.Name, err)
	}
	r := &pendingRecord{namespace: sc.Namespace, ref: plan.ConfigRef{Type: sc.Type, Name: sc.Name}, before: before}
	for _, w := range sc.Workloads {
		groupKind, name, ok := strings.Cut(w, "/")
		n, err := cache.ParseObjectName(name)
		if !ok || err != nil || n.Namespace == "" {
			return nil, fmt.Errorf("pending change of %s %s/%s: workload %q is not Kind/namespace/name", sc.Type, sc.Namespace, sc.Name, w)
		}
		r.workloads = append(r.workloads, workloadKey{groupKind: groupKind, name: n})
	}
	return r, nil
}
