package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// stakater/Reloader's annotations, read with --reloader-annotations so that
// workloads annotated for Reloader need no change to move to reroll. Each
// gets a reroll meaning; reroll keeps its own guarantees (key-granular,
// level-triggered), and where it is stricter than Reloader, docs/
// migrating-from-reloader.md says so.
const (
	// ReloaderAuto on a workload: = reroll.dev/auto. Reloader parses it as
	// a Go bool ("true", "1", "t", ...).
	ReloaderAuto = "reloader.stakater.com/auto"
	// ReloaderConfigMapAuto and ReloaderSecretAuto on a workload: auto for
	// ConfigMaps, or Secrets, only.
	ReloaderConfigMapAuto = "configmap.reloader.stakater.com/auto"
	ReloaderSecretAuto    = "secret.reloader.stakater.com/auto"
	// ReloaderSecretProviderClassAuto and ReloaderSecretProviderClassReload
	// on a workload: auto for CSI volumes' classes, and the classes by name.
	ReloaderSecretProviderClassAuto   = "secretproviderclass.reloader.stakater.com/auto"
	ReloaderSecretProviderClassReload = "secretproviderclass.reloader.stakater.com/reload"
	// ReloaderConfigMapReload and ReloaderSecretReload on a workload: =
	// reroll.dev/configmaps and reroll.dev/secrets.
	ReloaderConfigMapReload = "configmap.reloader.stakater.com/reload"
	ReloaderSecretReload    = "secret.reloader.stakater.com/reload"
	// ReloaderConfigMapExclude and ReloaderSecretExclude on a workload: the
	// objects its auto modes skip.
	ReloaderConfigMapExclude = "configmaps.exclude.reloader.stakater.com/reload"
	ReloaderSecretExclude    = "secrets.exclude.reloader.stakater.com/reload"
	// ReloaderSearch on a workload: consume only the referenced objects
	// that carry ReloaderMatch: "true".
	ReloaderSearch = "reloader.stakater.com/search"
	// ReloaderPausePeriod on a workload: its own debounce window.
	ReloaderPausePeriod = "deployment.reloader.stakater.com/pause-period"
	// ReloaderMatch on a ConfigMap or Secret: consumed by search workloads.
	ReloaderMatch = "reloader.stakater.com/match"
	// ReloaderIgnore on a ConfigMap or Secret: = reroll.dev/ignore.
	ReloaderIgnore = "reloader.stakater.com/ignore"
	// ReloaderLastReloadedFrom is what Reloader's annotations strategy
	// wrote on pod templates: a leftover reroll never touches.
	ReloaderLastReloadedFrom = "reloader.stakater.com/last-reloaded-from"
)

// ReloaderOptInKeys returns the workload annotations that opt in to
// Reloader. Like Reloader, reroll reads them from the pod template when the
// workload itself has none of them.
func ReloaderOptInKeys() []string {
	return []string{ReloaderAuto, ReloaderConfigMapAuto, ReloaderSecretAuto, ReloaderSecretProviderClassAuto,
		ReloaderConfigMapReload, ReloaderSecretReload, ReloaderSecretProviderClassReload, ReloaderSearch}
}

// IsReloaderKey reports whether k is an annotation of Reloader's that reroll
// reads, which the caches keep: the opt-in ones and those below.
func IsReloaderKey(k string) bool {
	switch k {
	case ReloaderConfigMapExclude, ReloaderSecretExclude, ReloaderPausePeriod, ReloaderMatch, ReloaderIgnore, ReloaderRolloutStrategy:
		return true
	}
	return slices.Contains(ReloaderOptInKeys(), k)
}

// WithReloaderFallback returns a workload's annotations with, when its own
// metadata has none of Reloader's opt-in annotations, those of its pod
// template added, as Reloader reads them.
func WithReloaderFallback(meta, template map[string]string) map[string]string {
	if len(template) == 0 || slices.ContainsFunc(ReloaderOptInKeys(), func(k string) bool { _, ok := meta[k]; return ok }) {
		return meta
	}
	merged := make(map[string]string, len(meta)+len(template))
	for k, v := range meta {
		merged[k] = v
	}
	for _, k := range ReloaderOptInKeys() {
		if v, ok := template[k]; ok {
			merged[k] = v
		}
	}
	return merged
}

// reloaderOptIn is what Reloader's annotations on a workload say; a nil
// list or a false "set" means the annotation is absent.
type reloaderOptIn struct {
	// autoSet says ReloaderAuto is present; auto is its value.
	autoSet, auto bool
	// autoConfigMaps, autoSecrets, autoSecretProviderClasses and search are
	// the typed autos and search.
	autoConfigMaps, autoSecrets, autoSecretProviderClasses, search bool
	// configMaps, secrets and secretProviderClasses are the reload lists,
	// nil when absent, and configMapPatterns and secretPatterns their
	// regular expressions.
	configMaps, secrets, secretProviderClasses []string
	configMapPatterns, secretPatterns          []*regexp.Regexp
	// excludeConfigMaps and excludeSecrets are the exclude lists.
	excludeConfigMaps, excludeSecrets []string
	// window is the pause period; zero when absent.
	window time.Duration
}

// parseReloaderOptIn reads Reloader's workload annotations. Malformed values
// are problems, reported like reroll's own; what parsed is still returned.
func parseReloaderOptIn(a map[string]string) (r reloaderOptIn, problems []string) {
	if v, ok := a[ReloaderAuto]; ok {
		auto, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s must be a boolean such as \"true\" or \"false\", not %q", ReloaderAuto, v))
		} else {
			r.autoSet, r.auto = true, auto
		}
	}
	for key, into := range map[string]*bool{ReloaderConfigMapAuto: &r.autoConfigMaps, ReloaderSecretAuto: &r.autoSecrets,
		ReloaderSecretProviderClassAuto: &r.autoSecretProviderClasses, ReloaderSearch: &r.search} {
		switch v, ok := a[key]; {
		case !ok || v == "false":
		case v == "true":
			*into = true
		default:
			problems = append(problems, fmt.Sprintf("%s must be \"true\" or \"false\", not %q", key, v))
		}
	}
	for key, into := range map[string]*[]string{ReloaderSecretProviderClassReload: &r.secretProviderClasses,
		ReloaderConfigMapExclude: &r.excludeConfigMaps, ReloaderSecretExclude: &r.excludeSecrets} {
		if v, ok := a[key]; ok {
			list, err := parseReloaderNameList(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", key, err))
				continue
			}
			*into = list
		}
	}
	for key, into := range map[string]struct {
		names    *[]string
		patterns *[]*regexp.Regexp
	}{ReloaderConfigMapReload: {&r.configMaps, &r.configMapPatterns}, ReloaderSecretReload: {&r.secrets, &r.secretPatterns}} {
		if v, ok := a[key]; ok {
			names, patterns, err := parseReloaderReloadList(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", key, err))
				continue
			}
			*into.names, *into.patterns = names, patterns
		}
	}
	if v, ok := a[ReloaderPausePeriod]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("%s must be a positive duration such as \"5m\", not %q", ReloaderPausePeriod, v))
		} else {
			r.window = d
		}
	}
	slices.Sort(problems) // map order must not reorder messages
	return r, problems
}

// parseReloaderReloadList parses Reloader's configmap or secret reload
// annotation: comma-separated items, spaces around them allowed as Reloader
// allows them. An item that is a valid object name is that name; any other
// is a regular expression that must match a whole name, as Reloader matches
// its items against names ("app-config-.*"). An item that is neither is an
// error, never a silent miss.
func parseReloaderReloadList(v string) (names []string, patterns []*regexp.Regexp, err error) {
	var exact []string
	var problems []string
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" || len(validation.IsDNS1123Subdomain(item)) == 0 {
			exact = append(exact, item) // names, and empty items, are checked below
			continue
		}
		re, err := regexp.Compile("^(?:" + item + ")$")
		if err != nil {
			problems = append(problems, fmt.Sprintf("item %d %q is neither an object name nor a regular expression: %v", i+1, item, err))
			continue
		}
		patterns = append(patterns, re)
	}
	if len(exact) > 0 {
		if names, err = ParseNameList(strings.Join(exact, ",")); err != nil {
			problems = append([]string{err.Error()}, problems...)
		}
	}
	if len(problems) > 0 {
		return names, patterns, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return names, patterns, nil
}

// parseReloaderNameList parses the object list of a Reloader reload or
// exclude annotation: comma-separated names, spaces around them allowed as
// Reloader allows them. Reloader matches each item as a regular expression;
// reroll takes exact names only (it indexes consumers by name), so an item
// that is not a valid object name is an error, never a silent miss.
func parseReloaderNameList(v string) ([]string, error) {
	items := strings.Split(v, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	names, err := ParseNameList(strings.Join(items, ","))
	if err != nil {
		return names, fmt.Errorf("%v (reroll takes exact object names; Reloader's regular expressions are not supported)", err)
	}
	return names, nil
}
