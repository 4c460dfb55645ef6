package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
)

// annotationPrefix starts every annotation reroll reads or writes.
const annotationPrefix = "reroll.dev/"

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
	// AnnotationIgnore on a ConfigMap or Secret set to "true" means its
	// changes never roll anything.
	AnnotationIgnore = "reroll.dev/ignore"
	// AnnotationPaused set to "true" on a workload, a ConfigMap or Secret,
	// or a Namespace holds the rolls it would cause, without a write; they
	// happen once, to the content current then, when it is removed.
	AnnotationPaused = "reroll.dev/paused"
	// AnnotationWaves on a ConfigMap or Secret rolls its consumers in waves,
	// such as "1,10%,100%" (see parseWaves).
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
	// roll: the rollout reroll started (see rolloutRecord).
	AnnotationRollout = "reroll.dev/rollout"
)

// MaxReferences bounds how many distinct ConfigMaps and Secrets one workload
// may consume. It keeps the consumed annotation and the work per sync small.
const MaxReferences = 256

// optIn says how a workload takes part in reroll.
type optIn struct {
	// auto is true when every reference in the pod template is watched.
	auto bool
	// autoConfigMaps and autoSecrets watch every reference of one type
	// (Reloader's typed auto annotations).
	autoConfigMaps, autoSecrets bool
	// search watches the references to objects that carry Reloader's match
	// annotation (Reloader's search annotation).
	search bool
	// configMaps and secrets are the names listed in the by-name annotations.
	configMaps []string
	secrets    []string
	// excludeConfigMaps and excludeSecrets are objects the auto modes skip
	// (Reloader's exclude annotations).
	excludeConfigMaps, excludeSecrets []string
	// window is the workload's own debounce window (Reloader's pause
	// period); zero means --debounce.
	window time.Duration
}

// enabled reports whether the workload consumes anything reroll watches.
func (o optIn) enabled() bool {
	return o.auto || o.autoConfigMaps || o.autoSecrets || o.search || len(o.configMaps) > 0 || len(o.secrets) > 0
}

// watchesAll reports whether the auto modes watch every reference of
// objects of type t.
func (o optIn) watchesAll(t configType) bool {
	return o.auto || (t == typeConfigMap && o.autoConfigMaps) || (t == typeSecret && o.autoSecrets)
}

// excludes reports whether the auto modes skip ref.
func (o optIn) excludes(ref configRef) bool {
	if ref.typ == typeConfigMap {
		return slices.Contains(o.excludeConfigMaps, ref.name)
	}
	return slices.Contains(o.excludeSecrets, ref.name)
}

// optInSettings are the flags that shape how opt-in annotations are read.
type optInSettings struct {
	// autoAll is --auto-all.
	autoAll bool
	// reloader is --reloader-annotations: read Reloader's annotations too.
	reloader bool
}

// parseOptIn reads the opt-in annotations of a workload (with Reloader's,
// as settings say). Every malformed annotation is reported in the error,
// and the parts that did parse are still returned, so that indexing can
// keep watching what is valid while the sync reports the problem.
// conflicts lists where reroll's and Reloader's annotations disagree
// (reroll's wins).
func parseOptIn(annotations map[string]string, s optInSettings) (o optIn, conflicts []string, err error) {
	o, err = parseRerollOptIn(annotations, s.autoAll)
	if !s.reloader {
		return o, nil, err
	}
	conflicts, problems := applyReloaderOptIn(&o, annotations)
	if len(problems) > 0 {
		if err != nil {
			problems = append([]string{err.Error()}, problems...)
		}
		err = fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return o, conflicts, err
}

// parseRerollOptIn reads reroll's own opt-in annotations; autoAll is
// --auto-all.
func parseRerollOptIn(annotations map[string]string, autoAll bool) (optIn, error) {
	var errs []string
	o := optIn{auto: autoAll}
	if v, ok := annotations[AnnotationAuto]; ok {
		switch v {
		case "true":
			o.auto = true
		case "false":
			o.auto = false
		default:
			errs = append(errs, fmt.Sprintf("%s must be \"true\" or \"false\", not %q", AnnotationAuto, v))
		}
	}
	var err error
	if v, ok := annotations[AnnotationConfigMaps]; ok {
		if o.configMaps, err = parseNameList(v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", AnnotationConfigMaps, err))
		}
	}
	if v, ok := annotations[AnnotationSecrets]; ok {
		if o.secrets, err = parseNameList(v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", AnnotationSecrets, err))
		}
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return o, nil
}

// parseNameList parses a comma-separated list of object names, such as
// "app-config,feature-flags". It is strict on purpose: whitespace, empty
// items, duplicates and invalid names are errors rather than being guessed
// at, because a silently dropped name means a silently missed roll. On error
// it returns the valid names it found.
func parseNameList(value string) ([]string, error) {
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

// isIgnored reports whether a ConfigMap or Secret opted out of rolling, and
// whether its ignore annotation holds a value other than "true" or "false".
// With reloader, Reloader's ignore annotation counts when reroll's is
// absent.
func isIgnored(annotations map[string]string, reloader bool) (ignored bool, malformed bool) {
	v, ok := annotations[AnnotationIgnore]
	if !ok {
		return reloader && annotations[reloaderIgnore] == "true", false
	}
	return v == "true", v != "true" && v != "false"
}

// ParseNamespaceList parses a comma-separated list of namespace names, such
// as --ignore-namespaces, as strictly as parseNameList; empty means none.
func ParseNamespaceList(value string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	names, err := parseNameList(value)
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
