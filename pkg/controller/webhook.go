package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/reroll/reroll/pkg/plan"
)

// --webhook-url (Reloader's webhook mode): a roll is not made but sent, as
// JSON, to a URL, for a pipeline or a person to act on. The consumed state
// is recorded only once the webhook accepted the change, so a failure, an
// outage or a restart of reroll leaves the change pending, and it is sent
// again with the queue's backoff until it is accepted: at least once,
// never lost.

// webhookTimeout bounds one POST to the webhook.
const webhookTimeout = 10 * time.Second

// webhookChange is the JSON a webhook receives for one roll.
type webhookChange struct {
	// Kind, Namespace and Name name the workload that would roll.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Changed are the consumed objects whose content changed, such as
	// "ConfigMap/app-config".
	Changed []string `json:"changed"`
	// ConsumedState is the reroll.dev/consumed value recorded once the
	// webhook accepts the change: keyed fingerprints, never values.
	ConsumedState string `json:"consumedState"`
	// Time is when reroll sent it.
	Time time.Time `json:"time"`
}

// webhookNotifier sends rolls to the webhook instead of making them.
type webhookNotifier struct {
	url string
	// client sends the POSTs; nil: http.DefaultClient, under webhookTimeout.
	client *http.Client
	clock  clock.PassiveClock
}

// enabled reports whether rolls go to a webhook.
func (n *webhookNotifier) enabled() bool {
	return n != nil && n.url != ""
}

// notify sends the roll p of key to the webhook, and returns an error, for
// a retry, unless it answered with a 2xx status.
func (n *webhookNotifier) notify(ctx context.Context, key workloadKey, p plan.Plan) error {
	change := webhookChange{Kind: key.groupKind, Namespace: key.name.Namespace, Name: key.name.Name,
		ConsumedState: p.Desired.String(), Time: n.clock.Now().UTC()}
	for _, u := range p.Consumed {
		if slices.Contains(p.Decision.Changed, plan.EntryID(u)) && !slices.Contains(change.Changed, u.Ref.String()) {
			change.Changed = append(change.Changed, u.Ref.String())
		}
	}
	body, err := json.Marshal(change)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := n.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sending %s to the webhook: %w", key, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("sending %s to the webhook: it answered %s", key, resp.Status)
	}
	klog.FromContext(ctx).Info("Sent to the webhook instead of rolling", "changed", change.Changed)
	return nil
}
