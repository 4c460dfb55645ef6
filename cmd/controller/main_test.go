package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reroll/reroll/pkg/plan"
)

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.workers != 8 || o.qps != 100 || o.burst != 200 || o.debounce != time.Second || o.hashKeySecret != "reroll-hash-key" || o.dryRun || o.decisions.AutoAll {
		t.Errorf("unexpected defaults: %+v", o)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"workers":         {[]string{"--workers=0"}, "--workers must be at least 1"},
		"qps":             {[]string{"--kube-api-qps=-1"}, "--kube-api-qps must be positive"},
		"burst":           {[]string{"--kube-api-burst=0"}, "--kube-api-burst must be at least 1"},
		"debounce":        {[]string{"--debounce=-1s"}, "--debounce must not be negative"},
		"selector":        {[]string{"--config-selector=a in (b"}, "--config-selector:"},
		"hash key":        {[]string{"--hash-key-secret="}, "--hash-key-secret must not be empty"},
		"unknown flag":    {[]string{"--nope"}, "flag provided but not defined: -nope"},
		"positional":      {[]string{"extra"}, "unexpected arguments: extra"},
		"bad duration":    {[]string{"--debounce=soon"}, "invalid value"},
		"several at once": {[]string{"--workers=0", "--kube-api-burst=0"}, "--workers must be at least 1, not 0\n--kube-api-burst must be at least 1"},
		"waves":           {[]string{"--waves=0,abc"}, `--waves: item 1 "0" is not a count of at least 1`},
		"ns selector":     {[]string{"--namespace-selector=a in (b"}, "--namespace-selector:"},
		"ignore list":     {[]string{"--ignore-namespaces=a,,b"}, "--ignore-namespaces: item 2 is empty"},
		"ignore name":     {[]string{"--ignore-namespaces=Kube_System"}, "--ignore-namespaces: item 1"},
		"ns and selector": {[]string{"--namespace=x", "--namespace-selector=a=b"}, "--namespace and --namespaces already name the watched ones"},
		"nss and ignore":  {[]string{"--namespaces=x,y", "--ignore-namespaces=z"}, "--namespace and --namespaces already name the watched ones"},
		"ns name":         {[]string{"--namespace=Bad_Name"}, "--namespace: item 1"},
		"ns and nss":      {[]string{"--namespace=x", "--namespaces=y"}, "--namespace and --namespaces both name watched namespaces; give one"},
		"nss twice":       {[]string{"--namespaces=x,y,x"}, `--namespaces: item 3 "x" is a duplicate`},
		"nss empty item":  {[]string{"--namespaces=x,,y"}, "--namespaces: item 2 is empty"},
		"waves end":       {[]string{"--waves=1,10%"}, "must end with 100%"},
		"rollout timeout": {[]string{"--rollout-timeout=0"}, "--rollout-timeout must be positive"},
		"pacing":          {[]string{"--max-rollouts-per-second=-1"}, "--max-rollouts-per-second must not be negative"},
		"in-flight cap":   {[]string{"--max-inflight-rollouts=-2"}, "--max-inflight-rollouts must not be negative"},
		"flap breaker":    {[]string{"--max-rolls-per-workload=3"}, "--max-rolls-per-workload must be N/DURATION"},
		"unknown kind":    {[]string{"--kinds=deployments,jobz"}, `--kinds: unknown kind "jobz"`},
		"rollout window":  {[]string{"--rollout-window=Mon 02:00-05:00 Nowhere/Land"}, `--rollout-window: item 1 "Mon 02:00-05:00 Nowhere/Land": unknown time zone`},
		"webhook url":     {[]string{"--webhook-url=ftp://x"}, `--webhook-url must be an http or https URL, not "ftp://x"`},
		"argo twice":      {[]string{"--kinds=rollouts", "--extra-kinds=rollouts.argoproj.io"}, "--kinds=rollouts and --extra-kinds both name Argo Rollouts"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseFlagsWatchedNamespaces(t *testing.T) {
	for args, want := range map[string][]string{
		"":                 nil,
		"--namespace=a":    {"a"},
		"--namespaces=a,b": {"a", "b"},
		"--namespaces=b,a": {"b", "a"},
	} {
		o, err := parseFlags(strings.Fields(args), io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		if !slices.Equal(o.decisions.Namespaces, want) {
			t.Errorf("%s: namespaces %q, want %q", args, o.decisions.Namespaces, want)
		}
	}
}

// --kinds=rollouts watches Argo Rollouts as a custom kind with Argo's own
// progress, and the typed kinds listed with it.
func TestParseFlagsArgoRollouts(t *testing.T) {
	o, err := parseFlags([]string{"--kinds=deployments,rollouts"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.decisions.Kinds) != 1 || o.decisions.Kinds[0] != "deployments" {
		t.Errorf("typed kinds %q, want [deployments]", o.decisions.Kinds)
	}
	if len(o.decisions.ExtraKinds) != 1 || o.decisions.ExtraKinds[0].GR.String() != "rollouts.argoproj.io" ||
		o.decisions.ExtraKinds[0].Status == nil || !o.decisions.ExtraKinds[0].CanRestart {
		t.Errorf("extra kinds %+v, want Argo Rollouts with their status and restart", o.decisions.ExtraKinds)
	}
}

// With --reloader-annotations, Jobs are watched by default, as Reloader
// does; an explicit --kinds still says exactly what is watched.
func TestParseFlagsJobsUnderReloaderAnnotations(t *testing.T) {
	o, err := parseFlags([]string{"--reloader-annotations"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(o.decisions.Kinds, "jobs") {
		t.Errorf("kinds %q, want jobs among them", o.decisions.Kinds)
	}
	o, err = parseFlags([]string{"--reloader-annotations", "--kinds=deployments"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.decisions.Kinds) != 1 || o.decisions.Kinds[0] != "deployments" {
		t.Errorf("kinds %q, want [deployments]", o.decisions.Kinds)
	}
	if o, _ := parseFlags(nil, io.Discard); slices.Contains(o.decisions.Kinds, "jobs") {
		t.Error("Jobs are watched by default without --reloader-annotations")
	}
}

// Reloader's names for reroll's flags work as Reloader documents them, and
// a Reloader flag that disagrees with reroll's own is an error.
func TestParseFlagsReloaderNames(t *testing.T) {
	o, err := parseFlags([]string{"--resource-label-selector=team=a", "--namespaces-to-ignore=kube-system", "--auto-reload-all",
		"--is-Argo-Rollouts", "--enable-csi-integration", "--ignored-workload-types=cronjobs", "--resources-to-ignore=secrets",
		"--reload-on-delete", "--reload-on-create"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.decisions.ConfigSelector != "team=a" || !o.decisions.AutoAll || !o.decisions.SecretsStoreCSI || !o.decisions.RollOnDelete ||
		!slices.Equal(o.decisions.IgnoreNamespaces, []string{"kube-system"}) || !slices.Equal(o.decisions.IgnoreConfigTypes, []plan.ConfigType{plan.TypeSecret}) {
		t.Errorf("options %+v", o)
	}
	if !slices.Equal(o.decisions.Kinds, []string{"deployments", "statefulsets", "daemonsets"}) || len(o.decisions.ExtraKinds) != 1 {
		t.Errorf("kinds %q, extra kinds %+v: want cronjobs dropped and Argo Rollouts added", o.decisions.Kinds, o.decisions.ExtraKinds)
	}
	for args, want := range map[string]string{
		"--resource-label-selector=a=b --config-selector=c=d": `--resource-label-selector="a=b" and --config-selector="c=d" disagree`,
		"--ignored-workload-types=deployments":                `--ignored-workload-types: "deployments" is not jobs or cronjobs`,
		"--resources-to-ignore=pods":                          `--resources-to-ignore must be configMaps or secrets, not "pods"`,
	} {
		if _, err := parseFlags(strings.Fields(args), io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

// update rewrites the files the tests compare with.
var update = flag.Bool("update", false, "rewrite docs/flags.md from the flag table")

// TestFlagsReference fails when docs/flags.md is not what the flag table
// writes; `make flags-doc` rewrites it.
func TestFlagsReference(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "flags.md")
	want := flagsReference()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/flags.md differs from the flag table; run make flags-doc")
	}
	for _, name := range []string{"--kinds", "--waves", "--leader-elect", "--auto-reload-all"} {
		if !strings.Contains(want, "`"+name+"`") {
			t.Errorf("the reference has no %s", name)
		}
	}
}

// reroll publishes the value of every decision flag, after folding
// Reloader's names and --namespace into reroll's own.
func TestParseFlagsPublished(t *testing.T) {
	o, err := parseFlags([]string{"--namespace=a", "--reloader-annotations", "--auto-reload-all", "--waves=1,100%"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"namespaces": "a", "reloader-annotations": "true", "auto-all": "true", "waves": "1,100%",
		"kinds": "deployments,statefulsets,daemonsets,cronjobs,jobs", "rollout-timeout": "10m", "reload-on-delete": "false"} {
		if got := o.published[name]; got != want {
			t.Errorf("published %s = %q, want %q", name, got, want)
		}
	}
	if _, ok := o.published["workers"]; ok {
		t.Error("a process flag is published")
	}
}
