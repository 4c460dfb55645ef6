package controller

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

func TestChangeFactsGet(t *testing.T) {
	web := workloadKey{groupKind: "Deployment", name: cache.ObjectName{Namespace: "ns", Name: "web"}}
	api := workloadKey{groupKind: "StatefulSet", name: cache.ObjectName{Namespace: "ns", Name: "web"}}
	tests := []struct {
		name            string
		key             workloadKey
		uid             string
		resourceVersion string
		want            bool
	}{
		{"the version remembered", web, "u1", "7", true},
		{"a later version", web, "u1", "8", false},
		{"re-created under the same name", web, "u2", "7", false},
		{"another kind of the same name", api, "u1", "7", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cf := newConsumerFactsMemo().forChange(changeKey{change: "ConfigMap/cfg:1"})
			cf.put(web, consumerMemo{uid: "u1", resourceVersion: "7", optedIn: true})
			m, ok := cf.get(tt.key, types.UID(tt.uid), tt.resourceVersion)
			if ok != tt.want || (ok && !m.optedIn) {
				t.Errorf("get = %+v, %v; want remembered: %v", m, ok, tt.want)
			}
		})
	}
}

func TestConsumerFactsMemoForChange(t *testing.T) {
	change := func(i int) changeKey {
		return changeKey{namespace: "ns", ref: plan.ConfigRef{Type: plan.TypeConfigMap, Name: "cfg"}, change: plan.ChangeID(fmt.Sprintf("ConfigMap/cfg:%d", i)), resourceVersion: fmt.Sprint(i)}
	}
	web := workloadKey{groupKind: "Deployment", name: cache.ObjectName{Namespace: "ns", Name: "web"}}
	tests := []struct {
		name string
		// use are the changes judged after change 0's facts were put, in
		// order, before change 0 is asked for again.
		use  []int
		want bool
	}{
		{"asked again at once", nil, true},
		{"another object version is another change", []int{1}, true},
		{"as many others as are remembered", []int{1, 2, 3, 4, 5, 6, 7, 8}, false},
		{"one fewer", []int{1, 2, 3, 4, 5, 6, 7}, true},
		{"used again, so not the least recent", []int{1, 2, 3, 4, 5, 6, 0, 7, 8}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newConsumerFactsMemo()
			m.forChange(change(0)).put(web, consumerMemo{resourceVersion: "1"})
			for _, i := range tt.use {
				m.forChange(change(i))
			}
			if len(m.changes) > maxMemoChanges || len(m.order) != len(m.changes) {
				t.Errorf("remembers %d changes in order %d, want at most %d", len(m.changes), len(m.order), maxMemoChanges)
			}
			if _, ok := m.forChange(change(0)).get(web, "", "1"); ok != tt.want {
				t.Errorf("change 0 remembered: %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestChangeFactsTrim(t *testing.T) {
	tests := []struct {
		name       string
		remembered int
		indexed    int
		wantKept   bool
	}{
		{"as many as indexed", 100, 100, true},
		{"a few gone", 120, 100, true},
		{"twice as many and some", 216, 100, true},
		{"more than that", 217, 100, false},
		{"every consumer gone", 17, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cf := newConsumerFactsMemo().forChange(changeKey{})
			for i := range tt.remembered {
				cf.put(workloadKey{name: cache.ObjectName{Name: fmt.Sprint(i)}}, consumerMemo{})
			}
			cf.trim(tt.indexed)
			if kept := len(cf.byWorkload) == tt.remembered; kept != tt.wantKept {
				t.Errorf("kept %d of %d, want all kept: %v", len(cf.byWorkload), tt.remembered, tt.wantKept)
			}
		})
	}
}
