package controller

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/reroll/reroll/pkg/plan"
)

// BenchmarkCacheFootprint reports the heap each cached object costs once it
// has been decoded from protobuf, as an informer does, passed through
// TransformForCache and stored in an indexer like the factory's. It prints
// bytes per object; it asserts nothing.
func BenchmarkCacheFootprint(b *testing.B) {
	const n = 4000
	ser := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	wire := func(obj k8sruntime.Object) []byte {
		var buf bytes.Buffer
		if err := ser.Encode(obj, &buf); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	meta := func(i int, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%05d", name, i), Namespace: fmt.Sprintf("bench-mem-%03d", i%190),
			UID:               types.UID(fmt.Sprintf("0b7a1c2e-5d6f-4a8b-9c0d-%012d", i)),
			ResourceVersion:   fmt.Sprint(100000 + i),
			CreationTimestamp: metav1.NewTime(time.Unix(1795719538, 0)),
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "bench", Operation: metav1.ManagedFieldsOperationUpdate,
				APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:data":{".":{},"f:key-0":{}}}`)}},
		}
	}
	kinds := []struct {
		name    string
		objects func(i int) k8sruntime.Object
		indexer cache.Indexers
	}{
		{"ConfigMap", func(i int) k8sruntime.Object {
			data := map[string]string{}
			for k := 0; k <= i%4; k++ {
				data[fmt.Sprint("KEY_", k)] = strings.Repeat("v", 100)
			}
			return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: meta(i, "cm"), Data: data}
		}, nil},
		{"Secret", func(i int) k8sruntime.Object {
			data := map[string][]byte{}
			for k := 0; k <= i%4; k++ {
				data[fmt.Sprint("key-", k)] = bytes.Repeat([]byte{1}, 100)
			}
			return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: meta(i, "secret"), Type: corev1.SecretTypeOpaque, Data: data}
		}, nil},
		{"Deployment", func(i int) k8sruntime.Object {
			return benchDeployment(meta(i, "app"))
		}, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			encoded := make([][]byte, n)
			for i := range encoded {
				encoded[i] = wire(k.objects(i))
			}
			reportStoreFootprint(b, encoded, k.indexer, func(raw []byte) (any, error) {
				obj, _, err := ser.Decode(raw, nil, nil)
				if err != nil {
					return nil, err
				}
				return TransformForCache(obj)
			})
		})
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchDeployment returns a Deployment shaped like the bench's, with the
// status kube-controller-manager writes.
func benchDeployment(m metav1.ObjectMeta) *appsv1.Deployment {
	labels := map[string]string{"app": m.Name}
	m.Labels = map[string]string{"reroll.dev/bench": "memory"}
	m.Annotations = map[string]string{"reroll.dev/auto": "true", "deployment.kubernetes.io/revision": "1",
		plan.AnnotationConsumed: "v1;key=0123456789abcdef;entry=abcdefabcdefabcdefabcdef"}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
						EnvFrom:                  []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
						VolumeMounts:             []corev1.VolumeMount{{Name: "secret", MountPath: "/etc/secret", ReadOnly: true}},
						TerminationMessagePath:   "/dev/termination-log",
						TerminationMessagePolicy: corev1.TerminationMessageReadFile,
						ImagePullPolicy:          corev1.PullIfNotPresent,
					}},
					Volumes:                       []corev1.Volume{{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptr.To[int32](0o644)}}}},
					RestartPolicy:                 corev1.RestartPolicyAlways,
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					DNSPolicy:                     corev1.DNSClusterFirst,
					SecurityContext:               &corev1.PodSecurityContext{},
					SchedulerName:                 "default-scheduler",
				},
			},
			Strategy:                appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}},
			RevisionHistoryLimit:    ptr.To[int32](10),
			ProgressDeadlineSeconds: ptr.To[int32](600),
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.",
				LastUpdateTime: metav1.NewTime(time.Unix(1795719538, 0)), LastTransitionTime: metav1.NewTime(time.Unix(1795719538, 0))},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", Message: fmt.Sprintf(`ReplicaSet "%s-5d4f8c7b9" has successfully progressed.`, m.Name),
				LastUpdateTime: metav1.NewTime(time.Unix(1795719538, 0)), LastTransitionTime: metav1.NewTime(time.Unix(1795719538, 0))},
		}},
	}
}

// BenchmarkProviderClassFootprint reports the heap each cached
// SecretProviderClassPodStatus costs once decoded from JSON, as the dynamic
// informer does, passed through providerClassTransform and stored in an
// indexer with the class index. Each status reports two objects, as a
// class with a password and a certificate would. It prints bytes per
// status; it asserts nothing.
func BenchmarkProviderClassFootprint(b *testing.B) {
	const n = 4000
	encoded := make([][]byte, n)
	for i := range encoded {
		ns := fmt.Sprintf("bench-mem-%03d", i%190)
		pod := fmt.Sprintf("app-%05d-5d4f8c7b9-x2kq7", i)
		raw := fmt.Sprintf(`{"apiVersion":"secrets-store.csi.x-k8s.io/v1","kind":"SecretProviderClassPodStatus",`+
			`"metadata":{"name":"%s-%s-vault-db","namespace":"%s","uid":"0b7a1c2e-5d6f-4a8b-9c0d-%012d","resourceVersion":"%d",`+
			`"creationTimestamp":"2026-12-01T00:00:00Z","labels":{"secrets-store.csi.k8s.io/managed":"true"},`+
			`"ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":"%s","uid":"1c8b2d3f-6e7a-4b9c-8d1e-%012d"}]},`+
			`"status":{"podName":"%s","secretProviderClassName":"vault-db","mounted":true,"targetPath":"/var/lib/kubelet/pods/1c8b2d3f/volumes/kubernetes.io~csi/secrets/mount",`+
			`"objects":[{"id":"secret/db-password","version":"v%d"},{"id":"secret/tls-cert","version":"v%d"}]}}`,
			pod, ns, ns, i, 100000+i, pod, i, pod, i%7, i%5)
		encoded[i] = []byte(raw)
	}
	indexers := cache.Indexers{providerClassIndex: func(obj any) ([]string, error) {
		p := obj.(*providerClassPod)
		return []string{p.Namespace + "/" + p.Class}, nil
	}}
	reportStoreFootprint(b, encoded, indexers, func(raw []byte) (any, error) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, err
		}
		return providerClassTransform(u)
	})
}

// reportStoreFootprint reports, for each of b.N rounds, the live heap per
// object of an indexer (with indexers) holding the encoded objects, each
// decoded and transformed by decode, as an informer caches them.
func reportStoreFootprint(b *testing.B, encoded [][]byte, indexers cache.Indexers, decode func([]byte) (any, error)) {
	for range b.N {
		before := heapInUse()
		store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, indexers)
		for _, raw := range encoded {
			obj, err := decode(raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := store.Add(obj); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(len(encoded)), "B/object")
		runtime.KeepAlive(store)
	}
}
