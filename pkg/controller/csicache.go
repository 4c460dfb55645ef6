package controller

import (
	"maps"
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/reroll/reroll/pkg/plan"
)

// What reroll caches of the Secrets Store CSI driver (see csi.go), and how
// it reads a class from the cache.

// ProviderClassPodStatuses is the Secrets Store CSI driver's resource.
var ProviderClassPodStatuses = schema.GroupVersionResource{Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasspodstatuses"}

// providerClassIndex indexes the cached statuses by namespace/class.
const providerClassIndex = "reroll.dev/secret-provider-class"

// providerClassPod is how reroll caches a SecretProviderClassPodStatus.
type providerClassPod struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// Pod and Class are the pod and the class the status is of.
	Pod, Class string
	// Versions maps each mounted object's id to a digest of its version.
	Versions map[string]string
}

// DeepCopyObject implements runtime.Object.
func (p *providerClassPod) DeepCopyObject() runtime.Object {
	out := &providerClassPod{TypeMeta: p.TypeMeta, Pod: p.Pod, Class: p.Class, Versions: maps.Clone(p.Versions)}
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return out
}

// providerClassTransform is the cache transform of the statuses: it keeps a
// providerClassPod, nothing else. It is idempotent.
func providerClassTransform(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil // already transformed, or a tombstone
	}
	p := &providerClassPod{
		TypeMeta:   metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()},
		ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), Namespace: u.GetNamespace(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion()},
		Versions:   map[string]string{},
	}
	p.Pod, _, _ = unstructured.NestedString(u.Object, "status", "podName")
	p.Class, _, _ = unstructured.NestedString(u.Object, "status", "secretProviderClassName")
	objects, _, _ := unstructured.NestedSlice(u.Object, "status", "objects")
	for _, o := range objects {
		m, _ := o.(map[string]any)
		id, _ := m["id"].(string)
		version, _ := m["version"].(string)
		if id != "" {
			p.Versions[id] = plan.DigestValue(version)
		}
	}
	return p, nil
}

// providerClassIndexFunc indexes a cached status by namespace/class.
func providerClassIndexFunc(obj any) ([]string, error) {
	if p, ok := obj.(*providerClassPod); ok && p.Class != "" {
		return []string{p.Namespace + "/" + p.Class}, nil
	}
	return nil, nil
}

// providerClassOf returns the view of SecretProviderClass name in
// namespace from the cached statuses, or false while none of its pods
// reported a version.
func providerClassOf(statuses indexerGroup, namespace, name string) (metav1.Object, bool) {
	objs, err := statuses.ByIndex(providerClassIndex, namespace+"/"+name)
	if err != nil || len(objs) == 0 {
		return nil, false
	}
	return &providerClassView{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, digests: newestVersions(objs)}, true
}

// providerClassView is a SecretProviderClass as the plan reads it: the
// newest version of each object its pods in one namespace mounted.
type providerClassView struct {
	metav1.ObjectMeta
	digests map[string]string
}

// ObjectDigests is what plan.CachedDigests reads of the view.
func (v *providerClassView) ObjectDigests() map[string]string { return v.digests }

// csiWatch is the statuses' informer while the driver's CRD is served; nil
// otherwise.
type csiWatch struct {
	mu  sync.RWMutex
	inf informerGroup
}

// informer returns the running informer, or nil.
func (w *csiWatch) informer() informerGroup {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.inf
}

// setInformer records the running informer, or nil once it stopped.
func (w *csiWatch) setInformer(inf informerGroup) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inf = inf
}

// newestVersions returns, for each object id the statuses report, the
// version of the status written last (the highest resourceVersion, which
// is etcd's revision).
func newestVersions(objs []any) map[string]string {
	digests, written := map[string]string{}, map[string]uint64{}
	for _, o := range objs {
		p, ok := o.(*providerClassPod)
		if !ok {
			continue
		}
		rv, _ := strconv.ParseUint(p.ResourceVersion, 10, 64)
		for id, v := range p.Versions {
			if last, seen := written[id]; !seen || rv > last {
				digests[id], written[id] = v, rv
			}
		}
	}
	return digests
}
