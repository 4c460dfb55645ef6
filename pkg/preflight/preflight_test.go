package preflight

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"
)

// fakeServer answers the few API calls preflight makes.
type fakeServer struct {
	ready   bool
	minor   string
	apps    []string // resources served in apps/v1
	allowed func(authorizationv1.ResourceAttributes) bool
}

// ServeHTTP implements http.Handler.
func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/readyz":
		if !s.ready {
			http.Error(w, "[-]etcd failed", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	case r.URL.Path == "/version":
		_ = json.NewEncoder(w).Encode(version.Info{Major: "1", Minor: s.minor, GitVersion: "v1." + s.minor + ".0"})
	case r.URL.Path == "/apis/apps/v1":
		list := metav1.APIResourceList{GroupVersion: "apps/v1"}
		for _, name := range s.apps {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: name})
		}
		_ = json.NewEncoder(w).Encode(list)
	case strings.HasSuffix(r.URL.Path, "/selfsubjectaccessreviews"):
		var review authorizationv1.SelfSubjectAccessReview
		_ = json.NewDecoder(r.Body).Decode(&review)
		review.Status.Allowed = s.allowed(*review.Spec.ResourceAttributes)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(review)
	default:
		http.NotFound(w, r)
	}
}

// check runs Check against a fake server.
func check(t *testing.T, s *fakeServer, req Requirements) error {
	t.Helper()
	srv := httptest.NewServer(s)
	defer srv.Close()
	_, ctx := ktesting.NewTestContext(t)
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	return Check(ctx, client, req)
}

func TestCheck(t *testing.T) {
	req := Requirements{
		Resources: []schema.GroupVersionResource{{Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "apps", Version: "v1", Resource: "statefulsets"}},
		Access: []Access{
			{Verb: "list", Group: "apps", Resource: "deployments"},
			{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: "team-a"},
			{Verb: "get", Resource: "secrets", Namespace: "reroll-system", Name: "reroll-hash-key"},
		},
	}
	all := func(authorizationv1.ResourceAttributes) bool { return true }
	tests := []struct {
		name   string
		server fakeServer
		want   []string // substrings of the error; none means success
	}{
		{name: "all good", server: fakeServer{ready: true, minor: "37", apps: []string{"deployments", "statefulsets"}, allowed: all}},
		{name: "not ready", server: fakeServer{minor: "37", allowed: all}, want: []string{"the API server is not ready", "etcd failed"}},
		{name: "too old", server: fakeServer{ready: true, minor: "29", allowed: all}, want: []string{"Kubernetes v1.29.0 is not supported; reroll needs 1.30 or newer"}},
		{name: "resource missing", server: fakeServer{ready: true, minor: "37", apps: []string{"deployments"}, allowed: all},
			want: []string{"the API server does not serve statefulsets in apps/v1"}},
		{name: "every missing permission listed", server: fakeServer{ready: true, minor: "37", apps: []string{"deployments", "statefulsets"},
			allowed: func(a authorizationv1.ResourceAttributes) bool { return a.Verb == "list" }},
			want: []string{"lacks permission to: patch deployments.apps in namespace team-a; get secrets reroll-hash-key in namespace reroll-system"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(t, &tt.server, req)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[Access]string{
		{Verb: "list", Resource: "secrets"}:                                         "list secrets in all namespaces",
		{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: "a"}:     "patch deployments.apps in namespace a",
		{Verb: "get", Resource: "secrets", Namespace: "reroll-system", Name: "key"}: "get secrets key in namespace reroll-system",
	} {
		if got := a.String(); got != want {
			t.Errorf("%+v: %q, want %q", a, got, want)
		}
	}
}
