package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// syncWorkload brings one workload's recorded state up to date with what it
// consumes, rolling it when consumed content changed. It reads only from the
// caches and makes at most one write. It returns an error only when a retry
// can help; bad input is reported as a Warning Event and a log line.
func (c *Controller) syncWorkload(ctx context.Context, key workloadKey) error {
	k, ok := c.kind(key.kind)
	if !ok {
		return nil // not a kind this controller watches
	}
	if wait := c.bursts.take(key); wait > 0 {
		// Queued early by something else (reroll's own write, a resync, a
		// retry): the burst of config changes in progress rolls once, at
		// its end, to the content current then.
		klog.FromContext(ctx).V(4).Info("Burst of config changes in progress; syncing at its end", "workload", key, "after", wait)
		c.queue.AddAfter(key, wait)
		return nil
	}
	w, err := getWorkload(k, key.name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("kind", key.kind, "workload", klog.KObj(w.meta))
	ctx = klog.NewContext(ctx, logger)

	if c.cacheBehindOwnWrite(key, w.meta.GetResourceVersion()) {
		// The informer delivers reroll's last write soon and enqueues the
		// key again; deciding now on the older object could write twice.
		logger.V(4).Info("Cache is behind reroll's last write; waiting for it")
		return nil
	}
	o, err := parseOptIn(w.meta.GetAnnotations(), c.opts.AutoAll)
	if err != nil {
		c.warn(ctx, w, ReasonInvalidAnnotation, "%v; not rolling until it is fixed", err)
		return nil
	}
	if !o.enabled() {
		c.forget(key)
		return nil
	}
	if w.templateError != "" {
		c.warn(ctx, w, ReasonInvalidTemplate, "%s; not rolling until it is fixed", w.templateError)
		return nil
	}
	consumed := calculateConsumption(w.spec, o)
	if len(consumed) > MaxReferences {
		c.warn(ctx, w, ReasonTooManyReferences, "consumes %d ConfigMaps and Secrets, more than the %d reroll handles; not rolling", len(consumed), MaxReferences)
		return nil
	}

	recordedValue, recorded := c.recordedState(key, w)
	var stored consumedState
	var storedErr error
	var previous *consumedState
	if recorded {
		stored, storedErr = parseConsumedState(recordedValue)
		if storedErr == nil && stored.keyID == c.opts.HashKey.ID() {
			previous = &stored
		}
	}
	current := map[configRef]map[string]string{}
	desired, problems := calculateState(c.opts.HashKey, consumed, c.configLookup(key.name.Namespace, current), previous)
	blocked := false
	for _, p := range problems {
		c.warn(ctx, w, p.reason, "%s", p.message)
		blocked = blocked || p.blocking
	}
	if blocked {
		c.metrics.skipped.WithLabelValues(skipBlocked).Inc()
		return nil
	}

	d := decide(recorded, stored, storedErr, desired, c.opts.RollOnAdopt)
	if d.action == actionNone {
		c.metrics.skipped.WithLabelValues(skipUnchanged).Inc()
		c.remember(key, current)
		return nil
	}
	note := c.describe(key, w, d, consumed, current)
	if c.opts.DryRun {
		c.mu.Lock()
		c.dryRunStates[key] = desired.String()
		c.mu.Unlock()
		c.remember(key, current)
		c.metrics.skipped.WithLabelValues(skipDryRun).Inc()
		logger.Info("Dry run: not writing", "action", d.action, "note", note)
		c.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, ReasonDryRun, "DryRun", "Dry run, would %s: %s", d.action, note)
		return nil
	}

	configHash := ""
	if d.action == actionRoll {
		configHash = calculateConfigHash(c.opts.HashKey, desired)
	}
	body, err := annotationPatch(desired.String(), k.templatePath(), configHash)
	if err != nil {
		return err
	}
	// The patch is not conditional on the resourceVersion: it only sets
	// reroll's own annotations, so the status writes that workload
	// controllers make all the time need not conflict with it. A stale cache
	// is handled by cacheBehindOwnWrite instead.
	newRV, err := k.patch(ctx, key.name, body, metav1.PatchOptions{FieldManager: c.opts.FieldManager})
	switch {
	case apierrors.IsNotFound(err):
		c.forget(key)
		return nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		c.warn(ctx, w, ReasonPatchRejected, "the API server rejected reroll's patch: %v", err)
		return nil
	case err != nil:
		return fmt.Errorf("patching %s: %w", key, err)
	}
	if newRV != w.meta.GetResourceVersion() {
		c.mu.Lock()
		c.patchedFrom[key] = w.meta.GetResourceVersion()
		c.mu.Unlock()
	}
	c.remember(key, current)
	switch d.action {
	case actionRoll:
		c.metrics.rollouts.WithLabelValues(key.kind, key.name.Namespace).Inc()
		logger.Info("Rolled", "changed", d.changed)
		c.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, ReasonRolled, "Roll", "Rolled: %s", note)
	case actionAdopt:
		// No Event: adopting is the quiet, common case (every workload when
		// reroll is first installed), and an Event each would flood the API
		// server, and reroll's memory with Events waiting for their rate
		// limit. The consumed annotation and the metric show it.
		c.metrics.skipped.WithLabelValues(skipAdopted).Inc()
		logger.V(2).Info("Adopted", "consumed", len(consumed))
	case actionRebaseline:
		c.metrics.skipped.WithLabelValues(skipRebaselined).Inc()
		logger.Info("Re-baselined without rolling", "why", d.why)
		c.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, ReasonRebaselined, "Rebaseline", "%s", note)
	case actionRecord:
		c.metrics.skipped.WithLabelValues(skipReferences).Inc()
		logger.V(2).Info("Recorded changed references without rolling")
	}
	return nil
}

// cacheBehindOwnWrite reports whether the cached workload is still the
// version reroll last patched, so its own write has not reached the cache.
// Any other resourceVersion is that write or newer, and clears the mark.
func (c *Controller) cacheBehindOwnWrite(key workloadKey, resourceVersion string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	from, ok := c.patchedFrom[key]
	if ok && from == resourceVersion {
		return true
	}
	delete(c.patchedFrom, key)
	return false
}

// recordedState returns the workload's consumed annotation, or under
// --dry-run what reroll would have written there.
func (c *Controller) recordedState(key workloadKey, w workload) (string, bool) {
	if c.opts.DryRun {
		c.mu.Lock()
		v, ok := c.dryRunStates[key]
		c.mu.Unlock()
		if ok {
			return v, true
		}
	}
	v, ok := w.meta.GetAnnotations()[AnnotationConsumed]
	return v, ok
}

// configLookup returns a lookup of the cached ConfigMaps and Secrets of a
// namespace that also records, in found, the digests of what it looks up.
func (c *Controller) configLookup(namespace string, found map[configRef]map[string]string) configLookup {
	return func(ref configRef) (cachedConfig, bool) {
		var obj metav1.Object
		var err error
		switch ref.kind {
		case kindConfigMap:
			obj, err = c.configMaps.ConfigMaps(namespace).Get(ref.name)
		case kindSecret:
			obj, err = c.secrets.Secrets(namespace).Get(ref.name)
		}
		if err != nil {
			// The listers fail only with NotFound. Recording "no keys" lets
			// the next Rolled message name the keys of a re-created object.
			found[ref] = nil
			return cachedConfig{}, false
		}
		ignored, malformed := isIgnored(obj.GetAnnotations())
		cfg := cachedConfig{digests: cachedDigests(obj), ignored: ignored}
		if malformed {
			cfg.malformedIgnore = obj.GetAnnotations()[AnnotationIgnore]
		}
		found[ref] = cfg.digests
		return cfg, true
	}
}

// remember records the digests a workload consumed at this sync, for the
// next Rolled message.
func (c *Controller) remember(key workloadKey, digests map[configRef]map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastDigests[key] = digests
}

// forget drops what the controller remembers of a workload that is gone or
// no longer opted in.
func (c *Controller) forget(key workloadKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.lastDigests, key)
	delete(c.dryRunStates, key)
	delete(c.patchedFrom, key)
	c.bursts.forget(key)
}

// describe says what a decision does, naming objects and keys, never values.
func (c *Controller) describe(key workloadKey, w workload, d decision, consumed []consumption, current map[configRef]map[string]string) string {
	switch d.action {
	case actionAdopt:
		return fmt.Sprintf("recorded a baseline of %d consumed ConfigMaps and Secrets without rolling; changes to their content will roll this %s", len(consumed), key.kind)
	case actionRebaseline:
		return fmt.Sprintf("recorded a new baseline without rolling, because %s", d.why)
	case actionRecord:
		return "recorded changed references without rolling"
	}
	if len(d.changed) == 0 {
		return fmt.Sprintf("rolled on first sight (--roll-on-adopt), consuming %d ConfigMaps and Secrets", len(consumed))
	}
	byID := make(map[string]consumption, len(consumed))
	for _, u := range consumed {
		byID[entryID(u)] = u
	}
	c.mu.Lock()
	last := c.lastDigests[key]
	c.mu.Unlock()
	parts := make([]string, 0, len(d.changed))
	for _, id := range d.changed {
		u := byID[id]
		part := u.ref.String()
		if before, ok := last[u.ref]; ok {
			if keys := changedKeys(u, before, current[u.ref]); len(keys) > 0 {
				part += " (keys " + strings.Join(keys, ", ") + ")"
			}
		}
		parts = append(parts, part)
	}
	return "consumed content changed in " + strings.Join(parts, ", ")
}

// changedKeys lists the keys u consumes whose digest differs between two
// versions of an object, sorted.
func changedKeys(u consumption, before, after map[string]string) []string {
	var candidates []string
	if u.allKeys {
		candidates = slices.Collect(maps.Keys(before))
		for k := range after {
			if _, ok := before[k]; !ok {
				candidates = append(candidates, k)
			}
		}
	} else {
		candidates = slices.Collect(maps.Keys(u.keys))
	}
	var changed []string
	for _, k := range candidates {
		b, inBefore := before[k]
		a, inAfter := after[k]
		if inBefore != inAfter || a != b {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	return changed
}

// annotationPatch returns the patch reroll writes: the consumed state on the
// workload's metadata and, when rolling, the config hash on the pod template
// found at templatePath. The body is valid both as a strategic merge patch
// and as a JSON merge patch.
func annotationPatch(state string, templatePath []string, configHash string) ([]byte, error) {
	patch := map[string]any{
		"metadata": map[string]any{
			"annotations": map[string]string{AnnotationConsumed: state},
		},
	}
	if configHash != "" {
		var node any = map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{AnnotationConfigHash: configHash}},
		}
		for i := len(templatePath) - 1; i >= 0; i-- {
			node = map[string]any{templatePath[i]: node}
		}
		maps.Copy(patch, node.(map[string]any))
	}
	return json.Marshal(patch)
}

// warn reports bad input on a workload: a Warning Event and a log line.
func (c *Controller) warn(ctx context.Context, w workload, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.metrics.warnings.WithLabelValues(reason).Inc()
	klog.FromContext(ctx).Info("Warning", "reason", reason, "message", msg)
	c.recorder.Eventf(w.object, nil, corev1.EventTypeWarning, reason, "Sync", "%s", msg)
}
