package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// reroll's annotations (its API; see pkg/controller/annotations.go) and the
// bench's own.
const (
	annotationAuto       = "reroll.dev/auto"
	annotationConsumed   = "reroll.dev/consumed"
	annotationConfigHash = "reroll.dev/config-hash"
	// annotationFloorHash is what the floor client writes on the pod
	// template of the Deployments reroll does not watch.
	annotationFloorHash = "bench.reroll.dev/config-hash"
	// labelScenario marks every Deployment with the scenario that made it,
	// so a tracker watches only its own.
	labelScenario = "bench.reroll.dev/scenario"
)

// seedWorkers is how many requests run in parallel when seeding.
const seedWorkers = 16

// consumption says what a bench Deployment's pod consumes.
type consumption struct {
	// envFromConfigMap is a ConfigMap consumed whole through envFrom.
	envFromConfigMap string
	// keyConfigMap and key are a ConfigMap key consumed through valueFrom.
	keyConfigMap, key string
	// volumeSecret is a Secret mounted as a volume.
	volumeSecret string
}

// newDeployment returns a Deployment of zero replicas labelled with its
// scenario, opted in to reroll when optIn is set. Zero replicas keep the
// control plane's own work per roll small (no Pods; there are no nodes to
// run them anyway): a roll still makes kube-controller-manager create a
// ReplicaSet, and reroll's work does not depend on the replica count.
func newDeployment(namespace, name, scenario string, optIn bool, c consumption) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	container := corev1.Container{Name: "app", Image: "registry.k8s.io/pause:3.10"}
	var volumes []corev1.Volume
	if c.envFromConfigMap != "" {
		container.EnvFrom = append(container.EnvFrom, corev1.EnvFromSource{
			ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: c.envFromConfigMap}},
		})
	}
	if c.keyConfigMap != "" {
		container.Env = append(container.Env, corev1.EnvVar{Name: "VALUE", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: c.keyConfigMap}, Key: c.key},
		}})
	}
	if c.volumeSecret != "" {
		volumes = append(volumes, corev1.Volume{Name: "secret", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: c.volumeSecret},
		}})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "secret", MountPath: "/etc/secret", ReadOnly: true})
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{labelScenario: scenario}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{container}, Volumes: volumes},
			},
		},
	}
	if optIn {
		d.Annotations = map[string]string{annotationAuto: "true"}
	}
	return d
}

// newConfigMap returns a ConfigMap with the given data.
func newConfigMap(namespace, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Data: data}
}

// newSecret returns an Opaque Secret with the given data.
func newSecret(namespace, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Type: corev1.SecretTypeOpaque, Data: data}
}

// newNamespace returns a Namespace.
func newNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// newRand returns a fast, seeded generator whose output is random enough
// not to compress. Seeds make the seeded data reproducible.
func newRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// randomBytes returns n random bytes.
func randomBytes(rng *rand.ChaCha8, n int) []byte {
	b := make([]byte, n)
	_, _ = rng.Read(b) // never fails
	return b
}

// randomText returns n characters of base64-encoded random bytes: text, as
// ConfigMap data is, with no redundancy beyond base64's.
func randomText(rng *rand.ChaCha8, n int) string {
	return base64.StdEncoding.EncodeToString(randomBytes(rng, n*3/4+3))[:n]
}

// splitSize splits size into parts of random lengths that add up to it,
// each at least 1.
func splitSize(rng *rand.Rand, size, parts int) []int {
	if parts > size {
		parts = max(size, 1)
	}
	out := make([]int, parts)
	left := size
	for i := range parts - 1 {
		share := left / (parts - i)
		out[i] = max(1, share/2+rng.IntN(share+1))
		left -= out[i]
	}
	out[parts-1] = max(left, 1)
	return out
}

// forEach calls fn for every i in [0, n) on up to workers goroutines and
// returns the first error; after an error no new call starts.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}

// createNamespaces creates the namespaces names.
func (e *env) createNamespaces(ctx context.Context, names []string) error {
	return forEach(ctx, len(names), seedWorkers, func(ctx context.Context, i int) error {
		_, err := e.cluster.client.CoreV1().Namespaces().Create(ctx, newNamespace(names[i]), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating namespace %s: %w", names[i], err)
		}
		return nil
	})
}

// createDeployments creates the Deployments make returns for i in [0, n).
func (e *env) createDeployments(ctx context.Context, n int, make func(i int) *appsv1.Deployment) error {
	return forEach(ctx, n, seedWorkers, func(ctx context.Context, i int) error {
		d := make(i)
		if _, err := e.cluster.client.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
		return nil
	})
}

// createConfigMaps creates the ConfigMaps make returns for i in [0, n).
func (e *env) createConfigMaps(ctx context.Context, n int, make func(i int) *corev1.ConfigMap) error {
	return forEach(ctx, n, seedWorkers, func(ctx context.Context, i int) error {
		cm := make(i)
		if _, err := e.cluster.client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		return nil
	})
}

// key returns the tracker key of a Deployment.
func key(namespace, name string) string {
	return namespace + "/" + name
}
