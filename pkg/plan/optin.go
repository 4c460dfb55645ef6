package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// How a workload opts in: reroll's own annotations and, with
// --reloader-annotations, Reloader's, merged.

// OptIn says how a workload takes part in reroll.
type OptIn struct {
	// auto is true when every reference in the pod template is watched.
	Auto bool
	// autoConfigMaps and autoSecrets watch every reference of one type
	// (Reloader's typed auto annotations).
	AutoConfigMaps, AutoSecrets bool
	// search watches the references to objects that carry Reloader's match
	// annotation (Reloader's search annotation).
	Search bool
	// configMaps and secrets are the names listed in the by-name annotations.
	ConfigMaps []string
	// SecretProviderClasses are the classes listed by name, and
	// AutoSecretProviderClasses watches every CSI volume's class (Reloader's
	// typed auto).
	SecretProviderClasses     []string
	AutoSecretProviderClasses bool
	Secrets                   []string
	// excludeConfigMaps and excludeSecrets are objects the auto modes skip
	// (Reloader's exclude annotations).
	ExcludeConfigMaps, ExcludeSecrets []string
	// window is the workload's own debounce window (Reloader's pause
	// period); zero means --debounce.
	Window time.Duration
	// ignoreTypes are the types no workload consumes (see
	// OptInSettings.IgnoreTypes).
	ignoreTypes []ConfigType
	// ConfigMapPatterns and SecretPatterns are the regular expressions of
	// Reloader's reload annotations: every object of the workload's
	// namespace whose name matches is consumed, every key, optionally
	// (WithMatches finds them).
	ConfigMapPatterns, SecretPatterns []*regexp.Regexp
	// matched are the objects the patterns matched.
	matched []ConfigRef
}

// Enabled reports whether the workload consumes anything reroll watches.
func (o OptIn) Enabled() bool {
	return o.Auto || o.AutoConfigMaps || o.AutoSecrets || o.AutoSecretProviderClasses || o.Search ||
		len(o.ConfigMaps) > 0 || len(o.Secrets) > 0 || len(o.SecretProviderClasses) > 0 || o.HasPatterns()
}

// HasPatterns reports whether the workload names objects by pattern.
func (o OptIn) HasPatterns() bool {
	return len(o.ConfigMapPatterns) > 0 || len(o.SecretPatterns) > 0
}

// Matches reports whether one of the workload's patterns matches ref.
func (o OptIn) Matches(ref ConfigRef) bool {
	patterns := o.ConfigMapPatterns
	if ref.Type == TypeSecret {
		patterns = o.SecretPatterns
	}
	return slices.ContainsFunc(patterns, func(re *regexp.Regexp) bool { return re.MatchString(ref.Name) })
}

// WithMatches returns o with the objects its patterns match among the names
// of each type that names returns (the workload's namespace's).
func (o OptIn) WithMatches(names func(ConfigType) []string) OptIn {
	o.matched = nil
	for _, t := range []ConfigType{TypeConfigMap, TypeSecret} {
		if (t == TypeConfigMap && len(o.ConfigMapPatterns) == 0) || (t == TypeSecret && len(o.SecretPatterns) == 0) {
			continue
		}
		for _, name := range names(t) {
			if ref := (ConfigRef{t, name}); o.Matches(ref) && !o.Excludes(ref) {
				o.matched = append(o.matched, ref)
			}
		}
	}
	return o
}

// WatchesAll reports whether the auto modes watch every reference of
// objects of type t.
func (o OptIn) WatchesAll(t ConfigType) bool {
	return o.Auto || (t == TypeConfigMap && o.AutoConfigMaps) || (t == TypeSecret && o.AutoSecrets) ||
		(t == TypeSecretProviderClass && o.AutoSecretProviderClasses)
}

// Excludes reports whether the workload does not consume ref: its type is
// ignored, or the auto modes skip it.
func (o OptIn) Excludes(ref ConfigRef) bool {
	if slices.Contains(o.ignoreTypes, ref.Type) {
		return true
	}
	if ref.Type == TypeConfigMap {
		return slices.Contains(o.ExcludeConfigMaps, ref.Name)
	}
	return slices.Contains(o.ExcludeSecrets, ref.Name)
}

// OptInSettings are the flags that shape how opt-in annotations are read.
type OptInSettings struct {
	// AutoAll is --auto-all.
	AutoAll bool
	// Reloader is --reloader-annotations: read Reloader's annotations too.
	Reloader bool
	// IgnoreTypes are the types of object reroll neither watches nor rolls
	// on (--resources-to-ignore): no workload consumes them.
	IgnoreTypes []ConfigType
}

// ParseOptIn reads the opt-in annotations of a workload (with Reloader's,
// as settings say). Every malformed annotation is reported in the error,
// and the parts that did parse are still returned, so that indexing can
// keep watching what is valid while the sync reports the problem.
// conflicts lists where reroll's and Reloader's annotations disagree
// (reroll's wins).
func ParseOptIn(annotations map[string]string, s OptInSettings) (o OptIn, conflicts []string, err error) {
	o, err = parseRerollOptIn(annotations, s.AutoAll)
	o.ignoreTypes = s.IgnoreTypes
	if !s.Reloader {
		return o, nil, err
	}
	r, problems := parseReloaderOptIn(annotations)
	conflicts = mergeReloaderOptIn(&o, r, annotations)
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
func parseRerollOptIn(annotations map[string]string, autoAll bool) (OptIn, error) {
	var errs []string
	o := OptIn{Auto: autoAll}
	if v, ok := annotations[AnnotationAuto]; ok {
		switch v {
		case "true":
			o.Auto = true
		case "false":
			o.Auto = false
		default:
			errs = append(errs, fmt.Sprintf("%s must be \"true\" or \"false\", not %q", AnnotationAuto, v))
		}
	}
	var err error
	if v, ok := annotations[AnnotationConfigMaps]; ok {
		if o.ConfigMaps, err = ParseNameList(v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", AnnotationConfigMaps, err))
		}
	}
	if v, ok := annotations[AnnotationSecrets]; ok {
		if o.Secrets, err = ParseNameList(v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", AnnotationSecrets, err))
		}
	}
	if v, ok := annotations[AnnotationSecretProviderClasses]; ok {
		if o.SecretProviderClasses, err = ParseNameList(v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", AnnotationSecretProviderClasses, err))
		}
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return o, nil
}

// mergeReloaderOptIn adds what Reloader's annotations say (r) to o, which
// holds what reroll's own said (annotations are the workload's). Where both
// say the same thing and disagree, reroll's wins, and the returned
// conflicts say so.
func mergeReloaderOptIn(o *OptIn, r reloaderOptIn, annotations map[string]string) (conflicts []string) {
	if own, hasOwn := annotations[AnnotationAuto]; r.autoSet && hasOwn && (own == "true") != r.auto {
		conflicts = append(conflicts, fmt.Sprintf("%s=%q and %s=%q disagree; %s wins", AnnotationAuto, own, ReloaderAuto, annotations[ReloaderAuto], AnnotationAuto))
	} else if r.autoSet && !hasOwn {
		o.Auto = r.auto
	}
	o.AutoConfigMaps, o.AutoSecrets, o.Search = r.autoConfigMaps, r.autoSecrets, r.search
	o.AutoSecretProviderClasses = r.autoSecretProviderClasses
	o.ConfigMapPatterns, o.SecretPatterns = r.configMapPatterns, r.secretPatterns
	names := func(own, theirs string, list []string, into *[]string) {
		if _, hasOwn := annotations[own]; list != nil && hasOwn && !sameNames(list, *into) {
			conflicts = append(conflicts, fmt.Sprintf("%s and %s name different objects; %s wins", own, theirs, own))
		} else if list != nil && !hasOwn {
			*into = list
		}
	}
	names(AnnotationConfigMaps, ReloaderConfigMapReload, r.configMaps, &o.ConfigMaps)
	names(AnnotationSecrets, ReloaderSecretReload, r.secrets, &o.Secrets)
	names(AnnotationSecretProviderClasses, ReloaderSecretProviderClassReload, r.secretProviderClasses, &o.SecretProviderClasses)
	o.ExcludeConfigMaps, o.ExcludeSecrets, o.Window = r.excludeConfigMaps, r.excludeSecrets, r.window
	return conflicts
}

// sameNames reports whether two name lists hold the same names.
func sameNames(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(n string) bool { return !slices.Contains(b, n) })
}

// IsIgnored reports whether a ConfigMap or Secret opted out of rolling, and
// whether its ignore annotation holds a value other than "true" or "false".
// With reloader, Reloader's ignore annotation counts when reroll's is
// absent.
func IsIgnored(annotations map[string]string, reloader bool) (ignored bool, malformed bool) {
	v, ok := annotations[AnnotationIgnore]
	if !ok {
		return reloader && annotations[ReloaderIgnore] == "true", false
	}
	return v == "true", v != "true" && v != "false"
}
