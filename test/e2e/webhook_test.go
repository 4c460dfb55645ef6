//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// webhookServer is a test webhook on the loopback address that refuses
// requests until it is told to accept, and records the bodies it accepts.
type webhookServer struct {
	mu       sync.Mutex
	accept   bool
	refused  int
	accepted []map[string]any
}

// accepting makes the webhook accept requests from now on.
func (s *webhookServer) accepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept = true
}

// ServeHTTP implements http.Handler.
func (s *webhookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.accept {
		s.refused++
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var change map[string]any
	if err := json.Unmarshal(body, &change); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.accepted = append(s.accepted, change)
}

// counts returns how many requests were refused and accepted.
func (s *webhookServer) counts() (refused, accepted int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused, len(s.accepted)
}

// --webhook-url: a change is sent to the webhook instead of rolled; a
// webhook that refuses at first, across a restart of reroll, still gets it,
// once it accepts, and nothing rolls.
func TestWebhookGetsTheChangeAcrossRestart(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	hook := &webhookServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: hook}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + ln.Addr().String() + "/reroll"

	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	r := startReroll(t, ns, "--webhook-url="+url, "--kinds=deployments")
	waitAdopted(t, ns, "web")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitFor(t, "the webhook to refuse once", func(context.Context) (bool, error) {
		refused, _ := hook.counts()
		return refused >= 1, nil
	})
	r.stop()
	before, _ := hook.counts()
	r2 := startReroll(t, ns, "--webhook-url="+url, "--kinds=deployments")
	waitFor(t, "the restarted reroll to send the change again", func(context.Context) (bool, error) {
		refused, _ := hook.counts()
		return refused > before, nil
	})
	if _, accepted := hook.counts(); accepted != 0 {
		t.Fatalf("the webhook accepted %d changes while refusing", accepted)
	}
	hook.accepting()
	waitFor(t, "the webhook to accept the change", func(context.Context) (bool, error) {
		_, accepted := hook.counts()
		return accepted >= 1, nil
	})
	waitEvent(t, ns, "web", "WebhookSent")
	lookAgain(t, r2, ns, "web")
	hook.mu.Lock()
	accepted := hook.accepted
	hook.mu.Unlock()
	if len(accepted) != 1 {
		t.Fatalf("the webhook accepted %d changes, want 1", len(accepted))
	}
	if accepted[0]["name"] != "web" || accepted[0]["namespace"] != ns || !strings.Contains(strings.Join(toStrings(accepted[0]["changed"]), ","), "ConfigMap/cfg") {
		t.Errorf("the webhook got %v", accepted[0])
	}
	if d := getDeployment(t, ns, "web"); d.Spec.Template.Annotations[annotationConfigHash] != "" {
		t.Errorf("web rolled in webhook mode")
	}
}

// toStrings returns the strings of a JSON array.
func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, item := range list {
		if s, ok := item.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
