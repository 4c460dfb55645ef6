package controller

import (
	"fmt"
	"slices"
	"testing"
)

// planSync decides from cached state alone: one case per way a sync ends.
func TestPlanSync(t *testing.T) {
	key := testKey(t, 7)
	settings := planSettings{hashKey: key}
	cfgRefs := []podReference{{ref: configRef{typeConfigMap, "cfg"}, site: referenceSite{field: siteEnvFrom, owner: "app"}}}
	lookup := func(objects map[configRef]cachedConfig) configLookup {
		return func(ref configRef) (cachedConfig, bool) {
			c, ok := objects[ref]
			return c, ok
		}
	}
	v1 := map[configRef]cachedConfig{{typeConfigMap, "cfg"}: {digests: map[string]string{"a": digestValue("1")}}}
	v2 := map[configRef]cachedConfig{{typeConfigMap, "cfg"}: {digests: map[string]string{"a": digestValue("2")}}}
	state := func(objects map[configRef]cachedConfig) string {
		s, _ := calculateState(key, calculateConsumption(cfgRefs, optIn{auto: true}), lookup(objects), nil)
		return s.String()
	}
	manyRefs := make([]podReference, MaxReferences+1)
	for i := range manyRefs {
		manyRefs[i] = podReference{ref: configRef{typeSecret, fmt.Sprint("s-", i)}}
	}
	auto := map[string]string{AnnotationAuto: "true"}
	tests := []struct {
		name         string
		in           planInput
		wantOptedOut bool
		wantBlocked  bool
		wantProblems []string
		wantAction   syncAction
	}{
		{name: "not opted in", in: planInput{references: cfgRefs}, wantOptedOut: true},
		{name: "malformed annotation", in: planInput{annotations: map[string]string{AnnotationAuto: "yes"}, references: cfgRefs},
			wantBlocked: true, wantProblems: []string{ReasonInvalidAnnotation}},
		{name: "unusable template", in: planInput{annotations: auto, templateError: "no pod template at spec.template"},
			wantBlocked: true, wantProblems: []string{ReasonInvalidTemplate}},
		{name: "too many references", in: planInput{annotations: auto, references: manyRefs, lookup: lookup(nil)},
			wantBlocked: true, wantProblems: []string{ReasonTooManyReferences}},
		{name: "missing object", in: planInput{annotations: auto, references: cfgRefs, lookup: lookup(nil)},
			wantBlocked: true, wantProblems: []string{ReasonMissingReference}},
		{name: "first sight adopts", in: planInput{annotations: auto, references: cfgRefs, lookup: lookup(v1)}, wantAction: actionAdopt},
		{name: "unchanged", in: planInput{annotations: auto, references: cfgRefs, lookup: lookup(v1), recorded: state(v1), hasRecorded: true},
			wantAction: actionNone},
		{name: "changed content rolls", in: planInput{annotations: auto, references: cfgRefs, lookup: lookup(v2), recorded: state(v1), hasRecorded: true},
			wantAction: actionRoll},
		{name: "malformed ignore warns and still decides", in: planInput{annotations: auto, references: cfgRefs, recorded: state(v1), hasRecorded: true,
			lookup: lookup(map[configRef]cachedConfig{{typeConfigMap, "cfg"}: {digests: v2[configRef{typeConfigMap, "cfg"}].digests, malformedIgnore: "yes"}})},
			wantProblems: []string{ReasonInvalidAnnotation}, wantAction: actionRoll},
		{name: "unreadable state rebaselines", in: planInput{annotations: auto, references: cfgRefs, lookup: lookup(v1), recorded: "garbage", hasRecorded: true},
			wantAction: actionRebaseline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planSync(tt.in, settings)
			var reasons []string
			for _, pr := range p.problems {
				reasons = append(reasons, pr.reason)
			}
			if p.optedOut != tt.wantOptedOut || p.blocked != tt.wantBlocked || !slices.Equal(reasons, tt.wantProblems) || p.decision.action != tt.wantAction {
				t.Errorf("plan = optedOut %v, blocked %v, problems %q, action %v; want %v, %v, %q, %v",
					p.optedOut, p.blocked, reasons, p.decision.action, tt.wantOptedOut, tt.wantBlocked, tt.wantProblems, tt.wantAction)
			}
		})
	}
}
