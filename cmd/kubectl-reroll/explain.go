package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/reroll/reroll/pkg/controller"
)

// explanation is what `kubectl reroll explain` prints.
type explanation struct {
	controller.Explanation
	// Rolls are reroll's Rolled Events on the workload, oldest first.
	Rolls []roll `json:"rolls"`
	// RollsUnknown says why Rolls could not be read.
	RollsUnknown string `json:"rollsUnknown,omitempty"`
}

// roll is one Rolled Event.
type roll struct {
	Time time.Time `json:"time"`
	Note string    `json:"note"`
}

// runExplain prints everything about one workload.
func runExplain(ctx context.Context, o *options, args []string, out io.Writer) error {
	if len(args) != 1 || !strings.Contains(args[0], "/") {
		return errors.New("takes one KIND/NAME, such as deployment/web")
	}
	if o.allNamespaces {
		return errors.New("explain works in one namespace; drop -A")
	}
	cfg, client, ns, err := o.connect()
	if err != nil {
		return err
	}
	in, err := snapshot(ctx, o, cfg, client, ns)
	if err != nil {
		return err
	}
	kind, name, _ := strings.Cut(args[0], "/")
	e, ok := in.Explain(normalizeKind(kind), ns, name)
	if !ok {
		return fmt.Errorf("%s not found in namespace %s", args[0], ns)
	}
	x := explanation{Explanation: e, Rolls: []roll{}}
	if events, err := rolledEvents(ctx, client, ns); err != nil {
		x.RollsUnknown = err.Error()
	} else {
		for _, ev := range eventsFor(events, e.Kind, e.Namespace, e.Name) {
			x.Rolls = append(x.Rolls, roll{Time: eventTime(ev).Time, Note: ev.Note})
		}
	}
	if o.output != "table" {
		return printStructured(out, o.output, x)
	}
	return printExplanation(out, x, time.Now())
}

// printExplanation prints an explanation for a human.
func printExplanation(out io.Writer, x explanation, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s/%s\n", x.Kind, x.Namespace, x.Name)
	fmt.Fprintf(&b, "Opted in by:  %s\n", orDash(strings.Join(x.OptedInBy, ", ")))
	fmt.Fprintf(&b, "State:        %s", x.State)
	if x.Reason != "" {
		fmt.Fprintf(&b, " (%s)", x.Reason)
	}
	b.WriteString("\n\nReferences:\n")
	writeReferences(&b, x.References)
	b.WriteString("\nConsumes:\n")
	for _, c := range x.Consumes {
		req := "optional"
		if c.Required {
			req = "required"
		}
		fmt.Fprintf(&b, "  %s: %s (%s)\n", c.Object, keysText(c.Keys), req)
	}
	if len(x.Entries) > 0 {
		b.WriteString("\nRecorded vs current (keyed fingerprints):\n")
		tw := newTable(&b)
		for _, e := range x.Entries {
			verdict := "same"
			if e.Changed {
				verdict = "CHANGED"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Object, orDash(e.Recorded), orDash(e.Current), verdict)
		}
		tw.Flush()
	}
	b.WriteString("\nRolls (from reroll's Events):\n")
	switch {
	case x.RollsUnknown != "":
		fmt.Fprintf(&b, "  unknown: %s\n", x.RollsUnknown)
	case len(x.Rolls) == 0:
		b.WriteString("  none\n")
	}
	tw := newTable(&b)
	for _, r := range x.Rolls {
		fmt.Fprintf(tw, "  %s ago\t%s\n", age(r.Time, now), r.Note)
	}
	tw.Flush()
	_, err := io.WriteString(out, b.String())
	return err
}

// isNotFound reports a NotFound API error.
func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// writeReferences writes where the pod template references each object:
// "container app env[LOG_LEVEL]  ← configmap/web-config key LOG_LEVEL".
func writeReferences(b *strings.Builder, refs []controller.Reference) {
	tw := newTable(b)
	for _, r := range refs {
		keys := "every key"
		if len(r.Keys) > 0 {
			keys = "key " + strings.Join(r.Keys, ", ")
		}
		opt := ""
		if r.Optional {
			opt = " (optional)"
		}
		where := strings.TrimSpace(r.Container + " " + r.Field)
		fmt.Fprintf(tw, "  %s\t← %s %s%s\n", where, strings.ToLower(r.Object), keys, opt)
	}
	if len(refs) == 0 {
		fmt.Fprintln(tw, "  none")
	}
	tw.Flush()
}
