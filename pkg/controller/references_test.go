package controller

import (
	"cmp"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// cmKeyEnv is an env var from one ConfigMap key.
func cmKeyEnv(name, cm, key string, optional bool) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Key: key, Optional: optionalPtr(optional)}}}
}

// secretKeyEnv is an env var from one Secret key.
func secretKeyEnv(name, secret, key string, optional bool) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key, Optional: optionalPtr(optional)}}}
}

// optionalPtr returns nil for false, as most manifests leave it unset.
func optionalPtr(optional bool) *bool {
	if !optional {
		return nil
	}
	return &optional
}

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
		InitContainers: []corev1.Container{{Name: "sidecar", Image: "s:1", Env: []corev1.EnvVar{secretKeyEnv("P", "s", "p", true)}}},
		Containers: []corev1.Container{
			{Name: "app", Image: "app:1", Command: []string{"run"}, Env: []corev1.EnvVar{
				{Name: "LITERAL", Value: "a large literal value"},
				{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				cmKeyEnv("K", "cm", "k", false),
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
	want := []podReference{
		{configRef{typeSecret, "s"}, []string{"p"}, true, referenceSite{field: siteEnv, initContainer: true, owner: "sidecar", envName: "P"}},
		{configRef{typeConfigMap, "cm"}, []string{"k"}, false, referenceSite{field: siteEnv, owner: "app", envName: "K"}},
		{configRef{typeConfigMap, "cm"}, nil, false, referenceSite{field: siteEnvFrom, owner: "app"}},
		{configRef{typeConfigMap, "cm"}, []string{"a", "b"}, false, referenceSite{field: siteVolume, owner: "cmv"}},
		{configRef{typeSecret, "s"}, nil, false, referenceSite{field: siteVolume, owner: "sv"}},
		{configRef{typeConfigMap, "cm"}, nil, false, referenceSite{field: siteVolume, owner: "p"}},
	}
	got := podReferences(&spec)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	sites := []string{"initContainer sidecar env P", "container app env K", "container app envFrom", "volume cmv", "volume sv", "volume p"}
	for i, r := range got {
		if i < len(sites) && r.site.String() != sites[i] {
			t.Errorf("site %d = %q, want %q", i, r.site, sites[i])
		}
	}
	if refs := podReferences(&corev1.PodSpec{Containers: []corev1.Container{{Name: "plain"}}}); refs != nil {
		t.Errorf("a spec without references gave %+v", refs)
	}
}

func TestCalculateConsumption(t *testing.T) {
	auto := optIn{auto: true}
	tests := []struct {
		name string
		spec corev1.PodSpec
		o    optIn
		want []consumption
	}{
		{
			name: "not auto ignores the spec",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{cmKeyEnv("A", "cm", "a", false)}}}},
			o:    optIn{},
			want: []consumption{},
		},
		{
			name: "configMapKeyRef consumes one key",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: "x"},
				cmKeyEnv("A", "cm", "a", false),
			}}}},
			o:    auto,
			want: []consumption{{ref: configRef{typeConfigMap, "cm"}, required: true, keys: keysOf(true, "a"), from: site("container app env A")}},
		},
		{
			name: "secretKeyRef optional",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{secretKeyEnv("P", "db", "password", true)}}}},
			o:    auto,
			want: []consumption{{ref: configRef{typeSecret, "db"}, keys: keysOf(false, "password"), from: site("container app env P")}},
		},
		{
			name: "envFrom consumes every key",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Optional: optionalPtr(true)}},
			}}}},
			o: auto,
			want: []consumption{
				{ref: configRef{typeConfigMap, "cm"}, required: true, allKeys: true, from: site("container app envFrom")},
				{ref: configRef{typeSecret, "s"}, allKeys: true, from: site("container app envFrom")},
			},
		},
		{
			name: "initContainers and native sidecars count",
			spec: corev1.PodSpec{InitContainers: []corev1.Container{
				{Name: "init", Env: []corev1.EnvVar{cmKeyEnv("A", "init-cm", "a", false)}},
				{Name: "sidecar", RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways), EnvFrom: []corev1.EnvFromSource{
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sidecar-secret"}}}}},
			}},
			o: auto,
			want: []consumption{
				{ref: configRef{typeConfigMap, "init-cm"}, required: true, keys: keysOf(true, "a"), from: site("initContainer init env A")},
				{ref: configRef{typeSecret, "sidecar-secret"}, required: true, allKeys: true, from: site("initContainer sidecar envFrom")},
			},
		},
		{
			name: "volumes with and without items",
			spec: corev1.PodSpec{Volumes: []corev1.Volume{
				{Name: "all", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-all"}}}},
				{Name: "some", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm-some"},
					Items: []corev1.KeyToPath{{Key: "x", Path: "x"}, {Key: "y", Path: "y"}}}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls", Optional: optionalPtr(true),
					Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "crt"}}}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			}},
			o: auto,
			want: []consumption{
				{ref: configRef{typeConfigMap, "cm-all"}, required: true, allKeys: true, from: site("volume all")},
				{ref: configRef{typeConfigMap, "cm-some"}, required: true, keys: keysOf(true, "x", "y"), from: site("volume some")},
				{ref: configRef{typeSecret, "tls"}, keys: keysOf(false, "tls.crt"), from: site("volume tls")},
			},
		},
		{
			name: "projected sources",
			spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "pcm"}, Items: []corev1.KeyToPath{{Key: "k", Path: "k"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "ps"}, Optional: optionalPtr(true)}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			}}}}}},
			o: auto,
			want: []consumption{
				{ref: configRef{typeConfigMap, "pcm"}, required: true, keys: keysOf(true, "k"), from: site("volume proj")},
				{ref: configRef{typeSecret, "ps"}, allKeys: true, from: site("volume proj")},
			},
		},
		{
			name: "references to one object merge",
			spec: corev1.PodSpec{
				Containers: []corev1.Container{
					{Name: "a", Env: []corev1.EnvVar{cmKeyEnv("A", "cm", "a", true), cmKeyEnv("B", "cm", "b", false)}},
					{Name: "b", Env: []corev1.EnvVar{cmKeyEnv("A2", "cm", "a", false)}},
				},
			},
			o:    auto,
			want: []consumption{{ref: configRef{typeConfigMap, "cm"}, required: true, keys: map[string]bool{"a": true, "b": true}, from: site("container a env A")}},
		},
		{
			name: "optional only stays optional",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{cmKeyEnv("A", "cm", "a", true), cmKeyEnv("B", "cm", "b", true)}}}},
			o:    auto,
			want: []consumption{{ref: configRef{typeConfigMap, "cm"}, keys: keysOf(false, "a", "b"), from: site("container a env A")}},
		},
		{
			name: "a key reference and envFrom on one object consume every key",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a",
				Env:     []corev1.EnvVar{cmKeyEnv("A", "cm", "a", false)},
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			}}},
			o:    auto,
			want: []consumption{{ref: configRef{typeConfigMap, "cm"}, required: true, allKeys: true, keys: keysOf(true, "a"), from: site("container a env A")}},
		},
		{
			name: "same name in both kinds stays apart",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{cmKeyEnv("A", "x", "a", false), secretKeyEnv("B", "x", "b", false)}}}},
			o:    auto,
			want: []consumption{
				{ref: configRef{typeConfigMap, "x"}, required: true, keys: keysOf(true, "a"), from: site("container a env A")},
				{ref: configRef{typeSecret, "x"}, required: true, keys: keysOf(true, "b"), from: site("container a env B")},
			},
		},
		{
			name: "annotations add required objects with every key",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{cmKeyEnv("A", "cm", "a", true)}}}},
			o:    optIn{auto: true, configMaps: []string{"cm", "extra"}, secrets: []string{"api"}},
			want: []consumption{
				{ref: configRef{typeConfigMap, "cm"}, required: true, allKeys: true, keys: keysOf(false, "a"), from: site("container a env A")},
				{ref: configRef{typeConfigMap, "extra"}, required: true, allKeys: true, from: site("annotation reroll.dev/configmaps")},
				{ref: configRef{typeSecret, "api"}, required: true, allKeys: true, from: site("annotation reroll.dev/secrets")},
			},
		},
		{
			name: "annotations without auto ignore the spec",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{cmKeyEnv("A", "cm", "a", false)}}}},
			o:    optIn{secrets: []string{"api"}},
			want: []consumption{{ref: configRef{typeSecret, "api"}, required: true, allKeys: true, from: site("annotation reroll.dev/secrets")}},
		},
		{
			name: "empty names are skipped",
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{cmKeyEnv("A", "", "a", false)}}}},
			o:    auto,
			want: []consumption{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := calculateConsumption(podReferences(&tt.spec), tt.o)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// FuzzCalculateConsumption feeds arbitrary pod specs (decoded from JSON) to
// the reference extraction and checks its invariants: no panic, sorted and
// unique results, no empty names, every consumption consumes something, and
// the cached form of a workload consumes the same as its spec.
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
		cms, _ := parseNameList(configMaps)
		ss, _ := parseNameList(secrets)
		o := optIn{auto: true, configMaps: cms, secrets: ss}
		got := calculateConsumption(podReferences(&spec), o)
		cached, _ := TransformForCache(&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}})
		copied := cached.(*cachedWorkload).DeepCopyObject().(*cachedWorkload)
		if fromCache := calculateConsumption(copied.References, o); !reflect.DeepEqual(fromCache, got) {
			t.Fatalf("the cached form changed the consumption:\n spec   %+v\n cached %+v", got, fromCache)
		}
		if !slices.IsSortedFunc(got, func(a, b consumption) int {
			return cmp.Or(cmp.Compare(a.ref.typ, b.ref.typ), cmp.Compare(a.ref.name, b.ref.name))
		}) {
			t.Fatalf("not sorted: %+v", got)
		}
		for i, u := range got {
			if u.ref.name == "" {
				t.Fatalf("empty name: %+v", u)
			}
			if !u.allKeys && len(u.keys) == 0 {
				t.Fatalf("consumes nothing: %+v", u)
			}
			if i > 0 && got[i-1].ref == u.ref {
				t.Fatalf("duplicate: %+v", u)
			}
			if id := entryID(u); id == "" {
				t.Fatalf("empty entry id: %+v", u)
			}
		}
	})
}

// site parses the String form of a referenceSite, so that tests can write
// where a reference is as it reads in messages.
func site(desc string) referenceSite {
	w := strings.Fields(desc)
	s := referenceSite{initContainer: w[0] == "initContainer", owner: w[1]}
	switch {
	case w[0] == "volume":
		s.field = siteVolume
	case w[0] == "annotation":
		s.field = siteAnnotation
	case w[2] == "envFrom":
		s.field = siteEnvFrom
	default:
		s.field, s.envName = siteEnv, w[3]
	}
	return s
}
