package plan

import (
	"cmp"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/reroll/reroll/pkg/plan/plantest"
)

// keysOf builds a consumption's key map.
func keysOf(required bool, keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = required
	}
	return m
}

// The one walk of a pod spec finds every reference, in spec order, with
// where it is, and nothing else of the spec.
func TestPodReferences(t *testing.T) {
	cmRef := corev1.LocalObjectReference{Name: "cm"}
	spec := corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "sidecar", Image: "s:1", Env: []corev1.EnvVar{plantest.SecretKeyEnv("P", "s", "p", true)}}},
		Containers: []corev1.Container{
			{Name: "app", Image: "app:1", Command: []string{"run"}, Env: []corev1.EnvVar{
				{Name: "LITERAL", Value: "a large literal value"},
				{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				plantest.ConfigMapKeyEnv("K", "cm", "k", false),
			}, EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: cmRef}}}},
			{Name: "proxy", Image: "proxy:1"},
		},
		Volumes: []corev1.Volume{
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cmv", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: cmRef,
				Items: []corev1.KeyToPath{{Key: "a", Path: "a"}, {Key: "b", Path: "b"}}}}},
			{Name: "sv", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
			{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: cmRef}},
			}}}},
		},
		ServiceAccountName: "app",
	}
	want := []PodReference{
		{ConfigRef{TypeSecret, "s"}, []string{"p"}, true, ReferenceSite{Field: SiteEnv, InitContainer: true, Owner: "sidecar", EnvName: "P"}},
		{ConfigRef{TypeConfigMap, "cm"}, []string{"k"}, false, ReferenceSite{Field: SiteEnv, Owner: "app", EnvName: "K"}},
		{ConfigRef{TypeConfigMap, "cm"}, nil, false, ReferenceSite{Field: SiteEnvFrom, Owner: "app"}},
		{ConfigRef{TypeConfigMap, "cm"}, []string{"a", "b"}, false, ReferenceSite{Field: SiteVolume, Owner: "cmv"}},
		{ConfigRef{TypeSecret, "s"}, nil, false, ReferenceSite{Field: SiteVolume, Owner: "sv"}},
		{ConfigRef{TypeConfigMap, "cm"}, nil, false, ReferenceSite{Field: SiteVolume, Owner: "p"}},
	}
	got := PodReferences(&spec)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	sites := []string{"initContainer sidecar env P", "container app env K", "container app envFrom", "volume cmv", "volume sv", "volume p"}
	for i, r := range got {
		if i < len(sites) && r.Site.String() != sites[i] {
			t.Errorf("site %d = %q, want %q", i, r.Site, sites[i])
		}
	}
	if refs := PodReferences(&corev1.PodSpec{Containers: []corev1.Container{{Name: "plain"}}}); refs != nil {
		t.Errorf("a spec without references gave %+v", refs)
	}
}

func TestCalculateConsumption(t *testing.T) {
	auto := OptIn{Auto: true}
	tests := []struct {
		name string
		spec corev1.PodSpec
		o    OptIn
		want []Consumption
	}{
		{
			name: "not auto ignores the spec",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cm", "a", false)}}}},
			o:    OptIn{},
			want: []Consumption{},
		},
		{
			name: "configMapKeyRef consumes one key",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: "x"},
				plantest.ConfigMapKeyEnv("A", "cm", "a", false),
			}}}},
			o:    auto,
			want: []Consumption{{Ref: ConfigRef{TypeConfigMap, "cm"}, Required: true, Keys: keysOf(true, "a"), From: site("container app env A")}},
		},
		{
			name: "secretKeyRef optional",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{plantest.SecretKeyEnv("P", "db", "password", true)}}}},
			o:    auto,
			want: []Consumption{{Ref: ConfigRef{TypeSecret, "db"}, Keys: keysOf(false, "password"), From: site("container app env P")}},
		},
		{
			name: "envFrom consumes every key",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Optional: plantest.OptionalPtr(true)}},
			}}}},
			o: auto,
			want: []Consumption{
				{Ref: ConfigRef{TypeConfigMap, "cm"}, Required: true, AllKeys: true, From: site("container app envFrom")},
				{Ref: ConfigRef{TypeSecret, "s"}, AllKeys: true, From: site("container app envFrom")},
			},
		},
		{
			name: "initContainers and native sidecars count",
			spec: corev1.PodSpec{InitContainers: []corev1.Container{
				{Name: "init", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "init-cm", "a", false)}},
				{Name: "sidecar", RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways), EnvFrom: []corev1.EnvFromSource{
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sidecar-secret"}}}}},
			}},
			o: auto,
			want: []Consumption{
				{Ref: ConfigRef{TypeConfigMap, "init-cm"}, Required: true, Keys: keysOf(true, "a"), From: site("initContainer init env A")},
				{Ref: ConfigRef{TypeSecret, "sidecar-secret"}, Required: true, AllKeys: true, From: site("initContainer sidecar envFrom")},
			},
		},
		{
			name: "volumes with and without items",
			spec: corev1.PodSpec{Volumes: []corev1.Volume{
				{Name: "all", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-all"}}}},
				{Name: "some", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-some"},
					Items: []corev1.KeyToPath{{Key: "x", Path: "x"}, {Key: "y", Path: "y"}}}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls", Optional: plantest.OptionalPtr(true),
					Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "crt"}}}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			}},
			o: auto,
			want: []Consumption{
				{Ref: ConfigRef{TypeConfigMap, "cm-all"}, Required: true, AllKeys: true, From: site("volume all")},
				{Ref: ConfigRef{TypeConfigMap, "cm-some"}, Required: true, Keys: keysOf(true, "x", "y"), From: site("volume some")},
				{Ref: ConfigRef{TypeSecret, "tls"}, Keys: keysOf(false, "tls.crt"), From: site("volume tls")},
			},
		},
		{
			name: "projected sources",
			spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "pcm"}, Items: []corev1.KeyToPath{{Key: "k", Path: "k"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "ps"}, Optional: plantest.OptionalPtr(true)}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			}}}}}},
			o: auto,
			want: []Consumption{
				{Ref: ConfigRef{TypeConfigMap, "pcm"}, Required: true, Keys: keysOf(true, "k"), From: site("volume proj")},
				{Ref: ConfigRef{TypeSecret, "ps"}, AllKeys: true, From: site("volume proj")},
			},
		},
		{
			name: "references to one object merge",
			spec: corev1.PodSpec{
				Containers: []corev1.Container{
					{Name: "a", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cm", "a", true), plantest.ConfigMapKeyEnv("B", "cm", "b", false)}},
					{Name: "b", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A2", "cm", "a", false)}},
				},
			},
			o:    auto,
			want: []Consumption{{Ref: ConfigRef{TypeConfigMap, "cm"}, Required: true, Keys: map[string]bool{"a": true, "b": true}, From: site("container a env A")}},
		},
		{
			name: "optional only stays optional",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cm", "a", true), plantest.ConfigMapKeyEnv("B", "cm", "b", true)}}}},
			o:    auto,
			want: []Consumption{{Ref: ConfigRef{TypeConfigMap, "cm"}, Keys: keysOf(false, "a", "b"), From: site("container a env A")}},
		},
		{
			name: "a key reference and envFrom on one object consume every key",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a",
				Env:     []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cm", "a", false)},
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			}}},
			o:    auto,
			want: []Consumption{{Ref: ConfigRef{TypeConfigMap, "cm"}, Required: true, AllKeys: true, Keys: keysOf(true, "a"), From: site("container a env A")}},
		},
		{
			name: "same name in both kinds stays apart",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "x", "a", false), plantest.SecretKeyEnv("B", "x", "b", false)}}}},
			o:    auto,
			want: []Consumption{
				{Ref: ConfigRef{TypeConfigMap, "x"}, Required: true, Keys: keysOf(true, "a"), From: site("container a env A")},
				{Ref: ConfigRef{TypeSecret, "x"}, Required: true, Keys: keysOf(true, "b"), From: site("container a env B")},
			},
		},
		{
			name: "annotations add required objects with every key",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cm", "a", true)}}}},
			o:    OptIn{Auto: true, ConfigMaps: []string{"cm", "extra"}, Secrets: []string{"api"}},
			want: []Consumption{
				{Ref: ConfigRef{TypeConfigMap, "cm"}, Required: true, AllKeys: true, Keys: keysOf(false, "a"), From: site("container a env A")},
				{Ref: ConfigRef{TypeConfigMap, "extra"}, Required: true, AllKeys: true, From: site("annotation reroll.dev/configmaps")},
				{Ref: ConfigRef{TypeSecret, "api"}, Required: true, AllKeys: true, From: site("annotation reroll.dev/secrets")},
			},
		},
		{
			name: "annotations without auto ignore the spec",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cm", "a", false)}}}},
			o:    OptIn{Secrets: []string{"api"}},
			want: []Consumption{{Ref: ConfigRef{TypeSecret, "api"}, Required: true, AllKeys: true, From: site("annotation reroll.dev/secrets")}},
		},
		{
			name: "empty names are skipped",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "", "a", false)}}}},
			o:    auto,
			want: []Consumption{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CalculateConsumption(PodReferences(&tt.spec), tt.o)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// FuzzCalculateConsumption feeds arbitrary pod specs (decoded from JSON) to
// the reference extraction and checks its invariants: no panic, sorted and
// unique results, no empty names, and every consumption consumes something.
// (FuzzCachedConsumption in pkg/controller checks the cached form.)
func FuzzCalculateConsumption(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"containers":[{"name":"a","env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"cm","key":"k"}}}]}]}`,
		`{"containers":[{"name":"a","envFrom":[{"configMapRef":{"name":"cm"}},{"secretRef":{"name":"s","optional":true}}]}]}`,
		`{"initContainers":[{"name":"i","restartPolicy":"Always","env":[{"name":"S","valueFrom":{"secretKeyRef":{"name":"s","key":"p"}}}]}]}`,
		`{"volumes":[{"name":"v","configMap":{"name":"cm","items":[{"key":"a","path":"a"}]}},{"name":"w","secret":{"secretName":"s"}}]}`,
		`{"volumes":[{"name":"p","projected":{"sources":[{"configMap":{"name":"cm"}},{"secret":{"name":"s","items":[{"key":"k","path":"k"}]}}]}}]}`,
		`{"containers":[{"name":"a","env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"","key":""}}}]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "extra", "api")
	}
	f.Fuzz(func(t *testing.T, specJSON []byte, configMaps, secrets string) {
		var spec corev1.PodSpec
		if err := json.Unmarshal(specJSON, &spec); err != nil {
			return
		}
		cms, _ := ParseNameList(configMaps)
		ss, _ := ParseNameList(secrets)
		o := OptIn{Auto: true, ConfigMaps: cms, Secrets: ss}
		got := CalculateConsumption(PodReferences(&spec), o)
		if !slices.IsSortedFunc(got, func(a, b Consumption) int {
			return cmp.Or(cmp.Compare(a.Ref.Type, b.Ref.Type), cmp.Compare(a.Ref.Name, b.Ref.Name))
		}) {
			t.Fatalf("not sorted: %+v", got)
		}
		for i, u := range got {
			if u.Ref.Name == "" {
				t.Fatalf("empty name: %+v", u)
			}
			if !u.AllKeys && len(u.Keys) == 0 {
				t.Fatalf("consumes nothing: %+v", u)
			}
			if i > 0 && got[i-1].Ref == u.Ref {
				t.Fatalf("duplicate: %+v", u)
			}
			if id := EntryID(u); id == "" {
				t.Fatalf("empty entry id: %+v", u)
			}
		}
	})
}

// site parses the String form of a ReferenceSite, so that tests can write
// where a reference is as it reads in messages.
func site(desc string) ReferenceSite {
	w := strings.Fields(desc)
	s := ReferenceSite{InitContainer: w[0] == "initContainer", Owner: w[1]}
	switch {
	case w[0] == "volume":
		s.Field = SiteVolume
	case w[0] == "annotation":
		s.Field = SiteAnnotation
	case w[2] == "envFrom":
		s.Field = SiteEnvFrom
	default:
		s.Field, s.EnvName = SiteEnv, w[3]
	}
	return s
}
