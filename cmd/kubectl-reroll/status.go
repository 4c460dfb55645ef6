package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"

	"github.com/reroll/reroll/pkg/controller"
)

// statusRow is one workload of `kubectl reroll status`.
type statusRow struct {
	controller.WorkloadStatus
	// LastRolled is when reroll last rolled it, from its Events.
	LastRolled *time.Time `json:"lastRolled,omitempty"`
	// LastRollReason is that Event's note.
	LastRollReason string `json:"lastRollReason,omitempty"`
}

// runStatus prints what reroll would do now with each opted-in workload
// (or the one named KIND/NAME).
func runStatus(ctx context.Context, o *options, args []string, out io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("takes at most one KIND/NAME, got %q", args)
	}
	cfg, client, ns, err := o.connect()
	if err != nil {
		return err
	}
	in, err := snapshot(ctx, o, cfg, client, ns)
	if err != nil {
		return err
	}
	rolls, eventsErr := lastRolls(ctx, client, ns)
	var rows []statusRow
	for _, s := range in.Status() {
		if len(args) == 1 && !matchesKindName(args[0], s.Kind, s.Name) {
			continue
		}
		row := statusRow{WorkloadStatus: s}
		if e, ok := rolls[s.Kind+"/"+s.Namespace+"/"+s.Name]; ok {
			t := eventTime(e).Time
			row.LastRolled, row.LastRollReason = &t, e.Note
		}
		rows = append(rows, row)
	}
	if len(args) == 1 && len(rows) == 0 {
		return fmt.Errorf("%s: no opted-in workload of that name in namespace %q", args[0], ns)
	}
	if o.output != "table" {
		return printStructured(out, o.output, rows)
	}
	return printStatusTable(out, rows, o.allNamespaces, eventsErr, time.Now())
}

// printStatusTable prints status rows as a table; eventsErr, when set,
// says why the last rolls are unknown.
func printStatusTable(out io.Writer, rows []statusRow, allNamespaces bool, eventsErr error, now time.Time) error {
	tw := newTable(out)
	if allNamespaces {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprintln(tw, "NAME\tCONSUMES\tSTATE\tREASON\tLAST ROLLED (WHY)")
	for _, r := range rows {
		if allNamespaces {
			fmt.Fprintf(tw, "%s\t", r.Namespace)
		}
		last := "never"
		switch {
		case eventsErr != nil:
			last = "unknown"
		case r.LastRolled != nil:
			// When, and why: the Rolled Event's note names the objects
			// and keys.
			last = age(*r.LastRolled, now) + " ago: " + shorten(strings.TrimPrefix(r.LastRollReason, "Rolled: "), 80)
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\n", strings.ToLower(r.Kind), r.Name, shorten(consumesText(r.Consumes), 40),
			r.State, orDash(r.Reason), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if eventsErr != nil {
		_, err := fmt.Fprintf(out, "\nLAST ROLLED is unknown: %v\n", eventsErr)
		return err
	}
	return nil
}

// consumesText lists consumed objects and keys: "ConfigMap/web[a,b], Secret/db".
func consumesText(cs []controller.Consumed) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Object
		if len(c.Keys) > 0 {
			parts[i] += "[" + strings.Join(c.Keys, ",") + "]"
		}
	}
	return orDash(strings.Join(parts, ", "))
}

// matchesKindName reports whether "kind/name" (kubectl's forms: deployment,
// deploy, deployments) names a workload of Kind kind.
func matchesKindName(arg, kind, name string) bool {
	k, n, ok := strings.Cut(arg, "/")
	if !ok || n != name {
		return false
	}
	return normalizeKind(k) == strings.ToLower(kind)
}

// normalizeKind maps kubectl's names and short names of the built-in kinds
// to their lower-case Kind.
func normalizeKind(k string) string {
	k = strings.ToLower(k)
	if full, ok := map[string]string{"deploy": "deployment", "sts": "statefulset", "ds": "daemonset", "cj": "cronjob",
		"cm": "configmap"}[k]; ok {
		return full
	}
	return strings.TrimSuffix(k, "s")
}

// eventsFor returns reroll's Rolled Events of one workload, oldest first.
func eventsFor(all []eventsv1.Event, kind, namespace, name string) []eventsv1.Event {
	var out []eventsv1.Event
	for _, e := range all {
		if e.Regarding.Kind == kind && e.Regarding.Namespace == namespace && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}
