package leader

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/reroll/reroll/pkg/metrics"
)

// testConfig returns a Config with timings short enough for tests.
func testConfig(client *fake.Clientset, identity string) Config {
	return Config{
		Client: client, Namespace: "reroll-system", Name: "reroll", Identity: identity,
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond,
		OnLost: func() { panic("lost the lease unexpectedly") },
	}
}

// holder returns the Lease's holder, or "" if there is none.
func holder(t *testing.T, client *fake.Clientset) string {
	t.Helper()
	l, err := client.CoordinationV1().Leases("reroll-system").Get(context.Background(), "reroll", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// On shutdown a leader stops work, waits for it, and only then releases
// the Lease; a standby then takes over.
func TestShutdownReleasesAfterWorkAndStandbyTakesOver(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()

	shutdownA, stopA := context.WithCancel(ctx)
	var aWorking atomic.Bool
	var holderWhenWorkEnded atomic.Value
	doneA := make(chan error, 1)
	go func() {
		doneA <- Run(shutdownA, testConfig(client, "a"), func(ctx context.Context) error {
			aWorking.Store(true)
			<-ctx.Done()
			holderWhenWorkEnded.Store(holder(t, client))
			return nil
		})
	}()
	eventually(t, "a leading", aWorking.Load)

	shutdownB, stopB := context.WithCancel(ctx)
	defer stopB()
	var bWorking atomic.Bool
	doneB := make(chan error, 1)
	go func() {
		doneB <- Run(shutdownB, testConfig(client, "b"), func(ctx context.Context) error {
			bWorking.Store(true)
			<-ctx.Done()
			return nil
		})
	}()

	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if got := holderWhenWorkEnded.Load(); got != "a" {
		t.Errorf("holder while a's work drained = %v, want a (released too early)", got)
	}
	start := time.Now()
	eventually(t, "b leading", bWorking.Load)
	if took := time.Since(start); took > time.Second {
		t.Errorf("b took %v to take over after a released, want about RetryPeriod", took)
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	if h := holder(t, client); h != "" {
		t.Errorf("lease still held by %q after both stopped", h)
	}
}

// A standby that never led returns promptly on shutdown.
func TestStandbyStopsPromptly(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	shutdownA, stopA := context.WithCancel(ctx)
	defer stopA()
	var aWorking atomic.Bool
	go func() {
		_ = Run(shutdownA, testConfig(client, "a"), func(ctx context.Context) error {
			aWorking.Store(true)
			<-ctx.Done()
			return nil
		})
	}()
	eventually(t, "a leading", aWorking.Load)

	shutdownB, stopB := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(shutdownB, testConfig(client, "b"), func(context.Context) error {
			t.Error("the standby ran work")
			return nil
		})
	}()
	stopB()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("standby did not stop")
	}
}

// Losing the Lease (renewals fail) calls OnLost while work is running.
func TestLostLeaseCallsOnLost(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	var failRenewals atomic.Bool
	client.PrependReactor("update", "leases", func(core.Action) (bool, runtime.Object, error) {
		if failRenewals.Load() {
			return true, nil, errors.New("etcd is gone")
		}
		return false, nil, nil
	})
	lost := make(chan struct{})
	cfg := testConfig(client, "a")
	cfg.OnLost = func() { close(lost) }
	var working, leadingSeen atomic.Bool
	go func() {
		_ = Run(ctx, cfg, func(ctx context.Context) error {
			leadingSeen.Store(StillLeading(ctx))
			working.Store(true)
			<-ctx.Done()
			return nil
		})
	}()
	eventually(t, "leading", working.Load)
	if !leadingSeen.Load() || !StillLeading(context.Background()) {
		t.Error("StillLeading is false while leading, or outside leader election")
	}
	failRenewals.Store(true)
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("OnLost was not called after renewals failed")
	}
}

// A work error is returned, and does not count as a lost Lease.
func TestWorkErrorIsReturned(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	want := errors.New("caches did not sync")
	err := Run(ctx, testConfig(fake.NewClientset(), "a"), func(context.Context) error { return want })
	if !errors.Is(err, want) {
		t.Errorf("Run = %v, want %v", err, want)
	}
}

func TestIdentity(t *testing.T) {
	if id, _ := Identity("reroll-abc", "node", "x"); id != "reroll-abc" {
		t.Errorf("pod name not used: %q", id)
	}
	if id, _ := Identity("", "laptop", "1234"); id != "laptop_1234" {
		t.Errorf("hostname identity = %q", id)
	}
	if _, err := Identity("", "", "x"); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("no identity: %v", err)
	}
}

// Without leader election the work runs at once and the leader gauge says
// 1; with it, the gauge follows the Lease.
func TestRunWorkersLeaderGauge(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	gauge := func(reg *metrics.Registry) string {
		var b strings.Builder
		_ = reg.WriteText(&b)
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(line, "reroll_leader ") {
				return line
			}
		}
		return ""
	}
	reg := metrics.NewRegistry()
	if err := RunWorkers(ctx, false, Config{}, reg, func(context.Context) error {
		if g := gauge(reg); g != "reroll_leader 1" {
			t.Errorf("without election: %q", g)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reg = metrics.NewRegistry()
	t.Setenv("POD_NAME", "pod-a")
	client := fake.NewClientset()
	shutdown, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunWorkers(shutdown, true, testConfig(client, ""), reg, func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		})
	}()
	eventually(t, "pod-a to lead, with the gauge at 1", func() bool { return holder(t, client) == "pod-a" && gauge(reg) == "reroll_leader 1" })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g := gauge(reg); g != "reroll_leader 0" {
		t.Errorf("after release: %q", g)
	}
}
