package controller

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// hashKeyDataKey is the key of the hash key Secret that holds the key.
const hashKeyDataKey = "key"

// HashKeyLabelSelector selects the hash key Secrets reroll creates, by the
// labels it gives them: tools find reroll's namespace with it.
const HashKeyLabelSelector = "app.kubernetes.io/name=reroll,app.kubernetes.io/component=hash-key"

// LoadOrCreateHashKey reads the hash key from the Secret namespace/name and
// creates that Secret with a new random key when it does not exist. With
// dryRun it creates nothing and uses a throwaway key instead.
//
// It reads through the API rather than an informer: it runs once, before
// the informers start, and it needs the one value reroll must know in full.
func LoadOrCreateHashKey(ctx context.Context, client kubernetes.Interface, namespace, name, fieldManager string, dryRun bool) (plan.HashKey, error) {
	logger := klog.FromContext(ctx)
	secrets := client.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return hashKeyFromSecret(s)
	case !apierrors.IsNotFound(err):
		return plan.HashKey{}, fmt.Errorf("reading hash key Secret %s/%s: %w", namespace, name, err)
	}
	secret := make([]byte, plan.MinHashKeyBytes)
	if _, err := rand.Read(secret); err != nil {
		return plan.HashKey{}, err
	}
	if dryRun {
		logger.Info("Hash key Secret does not exist; dry run uses a throwaway key, so every workload will look re-baselined", "secret", klog.KRef(namespace, name))
		return plan.NewHashKey(secret)
	}
	s = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			Labels:    map[string]string{"app.kubernetes.io/name": "reroll", "app.kubernetes.io/component": "hash-key"},
			Annotations: map[string]string{
				plan.AnnotationIgnore: "true",
				"reroll.dev/description": "Key of the HMACs reroll writes in annotations. " +
					"Deleting it makes reroll re-baseline every workload once, without rolling.",
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{hashKeyDataKey: secret},
	}
	created, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: fieldManager})
	switch {
	case err == nil:
		logger.Info("Created hash key Secret", "secret", klog.KObj(created))
		return hashKeyFromSecret(created)
	case apierrors.IsAlreadyExists(err):
		// Another replica created it first: use theirs.
		s, err = secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return plan.HashKey{}, fmt.Errorf("reading hash key Secret %s/%s: %w", namespace, name, err)
		}
		return hashKeyFromSecret(s)
	case apierrors.IsNotFound(err):
		return plan.HashKey{}, fmt.Errorf("creating hash key Secret %s/%s: namespace %q does not exist (set POD_NAMESPACE or --controller-namespace)", namespace, name, namespace)
	default:
		return plan.HashKey{}, fmt.Errorf("creating hash key Secret %s/%s: %w", namespace, name, err)
	}
}

// hashKeyFromSecret extracts the key from the hash key Secret.
func hashKeyFromSecret(s *corev1.Secret) (plan.HashKey, error) {
	k, err := plan.NewHashKey(s.Data[hashKeyDataKey])
	if err != nil {
		return plan.HashKey{}, fmt.Errorf("hash key Secret %s/%s, key %q: %w", s.Namespace, s.Name, hashKeyDataKey, err)
	}
	return k, nil
}

// HashKeyFromSecret returns the hash key a hash key Secret holds, for tools
// that read the Secret themselves and must never create it.
func HashKeyFromSecret(s *corev1.Secret) (plan.HashKey, error) {
	return hashKeyFromSecret(s)
}

// settingsPublisher publishes the decision settings on the hash key Secret
// (AnnotationSettings), where the kubectl plugin finds them.
type settingsPublisher struct {
	client       kubernetes.Interface
	namespace    string
	secret       string
	value        string
	fieldManager string
}

// newSettingsPublisher returns the publisher of o's decision settings; it
// publishes nothing without a hash key Secret, or under --dry-run.
func newSettingsPublisher(client kubernetes.Interface, o Options) *settingsPublisher {
	if o.HashKeySecret == "" || o.DryRun || o.Published == nil {
		return &settingsPublisher{}
	}
	return &settingsPublisher{client: client, namespace: o.ControllerNamespace, secret: o.HashKeySecret,
		value: PublishedDecisions(o.Published), fieldManager: o.FieldManager}
}

// publish writes the settings, if they differ from what the Secret holds.
// A failure (an older RBAC without patch on the Secret) is logged, not
// fatal: the plugin then says it cannot find them.
func (p *settingsPublisher) publish(ctx context.Context) {
	if p.client == nil {
		return
	}
	logger := klog.FromContext(ctx)
	secrets := p.client.CoreV1().Secrets(p.namespace)
	s, err := secrets.Get(ctx, p.secret, metav1.GetOptions{})
	if err == nil && s.Annotations[AnnotationSettings] == p.value {
		return
	}
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationSettings: p.value}}})
	if err == nil {
		_, err = secrets.Patch(ctx, p.secret, types.MergePatchType, body, metav1.PatchOptions{FieldManager: p.fieldManager})
	}
	if err != nil {
		logger.Error(err, "Cannot publish the decision settings for kubectl reroll; it will decide with its defaults", "secret", klog.KRef(p.namespace, p.secret))
		return
	}
	logger.V(2).Info("Published the decision settings", "secret", klog.KRef(p.namespace, p.secret))
}
