package controller

import (
	"reflect"
	"testing"
)

func TestKeptAnnotations(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		want map[string]string
	}{
		{name: "nil", in: nil, want: nil},
		{name: "none of reroll's", in: map[string]string{"a": "b", "reroll.dev.example/x": "y"}, want: nil},
		{name: "reroll's only", in: map[string]string{AnnotationAuto: "true", "meta.helm.sh/release-name": "web", AnnotationConsumed: "v1"},
			want: map[string]string{AnnotationAuto: "true", AnnotationConsumed: "v1"}},
		{name: "and Reloader's it reads", in: map[string]string{reloaderAuto: "true", reloaderLastReloadedFrom: "{}", reloaderMatch: "true",
			"secretproviderclass.reloader.stakater.com/auto": "true"},
			want: map[string]string{reloaderAuto: "true", reloaderMatch: "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keptAnnotations(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
