//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestChangeDuringAdoptionRollsFirst: reroll starts on 150 opted-in
// Deployments it has never seen, at 10 requests per second, so adopting
// them takes about 15 s. A change made once adoption has begun, to a
// ConfigMap only three of them consume (most likely not adopted yet: the
// test logs how many were), rolls those three while most of the others
// still wait for their adoption: the change goes ahead of the queue, and a consumer not
// adopted yet is compared against the content reroll first saw. In the
// end each of the three rolled once and none of the others rolled, by
// their pod templates.
func TestChangeDuringAdoptionRollsFirst(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	bulk := consumerNames("a", 147)
	early := consumerNames("z", 3)
	create(t, configMap(ns, "bulk", map[string]string{"k": "0"}), configMap(ns, "early", map[string]string{"k": "0"}))
	for _, name := range bulk {
		create(t, consumer(ns, name, "bulk", 0, nil))
	}
	for _, name := range early {
		create(t, consumer(ns, name, "early", 0, nil))
	}
	rolls := watchNamespaceRolls(t, ns)
	startReroll(t, ns, "--kube-api-qps=10", "--kube-api-burst=10")
	// The initial list comes in no particular order: wait for any adoption.
	waitFor(t, "adoption to begin", func(context.Context) (bool, error) { return adoptedCount(t, ns, "") > 0, nil })
	earlyAdopted := adoptedCount(t, ns, "z-")
	updateConfigMap(t, ns, "early", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	t.Logf("%d of the %d consumers of the change were adopted before it (the others roll against the content reroll first saw)", earlyAdopted, len(early))

	rolls.waitTotal("z-", len(early))
	adopted := adoptedCount(t, ns, "a-")
	t.Logf("the change rolled its %d consumers when %d of %d other Deployments were adopted", len(early), adopted, len(bulk))
	if adopted > len(bulk)/2 {
		t.Errorf("the change rolled only after %d of %d adoptions: it waited behind them", adopted, len(bulk))
	}

	waitAllAdopted(t, ns, bulk)
	rolls.expectEachOnce(early)
	if got := rolls.rolledNames("a-"); len(got) > 0 {
		t.Errorf("adoption rolled %q", got)
	}
}

// adoptedCount returns how many Deployments of ns named with prefix carry
// reroll's consumed annotation.
func adoptedCount(t *testing.T, ns, prefix string) int {
	t.Helper()
	list, err := testEnv.client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range list.Items {
		if strings.HasPrefix(d.Name, prefix) && d.Annotations[annotationConsumed] != "" {
			n++
		}
	}
	return n
}
