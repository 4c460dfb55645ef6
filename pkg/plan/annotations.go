package plan

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
)

// AnnotationPrefix starts every annotation reroll reads or writes.
const AnnotationPrefix = "reroll.dev/"

// The annotations below are reroll's API: users write the first seven,
// reroll writes the last three. Their names must never change.
const (
	// AnnotationAuto on a workload opts it in ("true") or, under --auto-all,
	// out ("false"): roll when anything its pod template references changes.
	AnnotationAuto = "reroll.dev/auto"
	// AnnotationConfigMaps on a workload lists extra ConfigMaps in its
	// namespace to watch by name, for apps that read them through the API.
	AnnotationConfigMaps = "reroll.dev/configmaps"
	// AnnotationSecrets on a workload lists extra Secrets to watch by name.
	AnnotationSecrets = "reroll.dev/secrets"
	// AnnotationSecretProviderClasses on a workload lists Secrets Store CSI
	// SecretProviderClasses to watch by name, as its CSI volumes do under
	// reroll.dev/auto.
	AnnotationSecretProviderClasses = "reroll.dev/secretproviderclasses"
	// AnnotationIgnore on a ConfigMap or Secret set to "true" means its
	// changes never roll anything.
	AnnotationIgnore = "reroll.dev/ignore"
	// AnnotationPaused set to "true" on a workload, a ConfigMap or Secret,
	// or a Namespace holds the rolls it would cause, without a write; they
	// happen once, to the content current then, when it is removed.
	AnnotationPaused = "reroll.dev/paused"
	// AnnotationWaves on a ConfigMap or Secret rolls its consumers in waves,
	// such as "1,10%,100%" (see ParseWaves).
	AnnotationWaves = "reroll.dev/waves"
	// AnnotationWavePriority on a workload orders it within waves: an
	// integer, lower first (default 0), then namespace/name.
	AnnotationWavePriority = "reroll.dev/wave-priority"

	// AnnotationConfigHash is written on the pod template, and only when
	// rolling: changing it is what makes the workload controller roll.
	AnnotationConfigHash = "reroll.dev/config-hash"
	// AnnotationConsumed is written on the workload's own metadata. It
	// records a keyed fingerprint of every object the workload consumes, so
	// reroll can adopt (baseline) a workload without touching its pod
	// template, and can tell after a restart whether content changed.
	AnnotationConsumed = "reroll.dev/consumed"
	// AnnotationRollout is written on the workload's metadata with each
	// roll: the rollout reroll started (see RolloutRecord).
	AnnotationRollout = "reroll.dev/rollout"
)

// MaxReferences bounds how many distinct ConfigMaps and Secrets one workload
// may consume. It keeps the consumed annotation and the work per sync small.
const MaxReferences = 256

// ParseNameList parses a comma-separated list of object names, such as
// "app-config,feature-flags". It is strict on purpose: whitespace, empty
// items, duplicates and invalid names are errors rather than being guessed
// at, because a silently dropped name means a silently missed roll. On error
// it returns the valid names it found.
func ParseNameList(value string) ([]string, error) {
	var names []string
	var problems []string
	seen := sets.New[string]()
	for i, item := range strings.Split(value, ",") {
		switch {
		case item == "":
			problems = append(problems, fmt.Sprintf("item %d is empty", i+1))
		case strings.TrimSpace(item) != item || strings.ContainsAny(item, " \t\n\r"):
			problems = append(problems, fmt.Sprintf("item %d %q contains whitespace", i+1, item))
		case seen.Has(item):
			problems = append(problems, fmt.Sprintf("item %d %q is a duplicate", i+1, item))
		default:
			if msgs := validation.IsDNS1123Subdomain(item); len(msgs) > 0 {
				problems = append(problems, fmt.Sprintf("item %d %q is not a valid name: %s", i+1, item, strings.Join(msgs, ", ")))
				continue
			}
			seen.Insert(item)
			names = append(names, item)
		}
	}
	if len(problems) > 0 {
		return names, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return names, nil
}

// ParseNamespaceList parses a comma-separated list of namespace names, such
// as --ignore-namespaces, as strictly as ParseNameList; empty means none.
func ParseNamespaceList(value string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	names, err := ParseNameList(value)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
			return nil, fmt.Errorf("%q is not a namespace name: %s", n, strings.Join(msgs, ", "))
		}
	}
	return names, nil
}
