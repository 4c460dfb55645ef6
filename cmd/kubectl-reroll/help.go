package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/reroll/reroll/pkg/controller"
)

// A command's help, written the way kubectl writes it: each flag once, long
// with two dashes and its short alias beside it ("-n, --namespace
// string"), in groups: the command's own flags, kubectl's, and the
// controller's settings that change what reroll decides. Go's flag package
// accepts "-x" and "--x" alike; only its help is written here.

// shortAliases maps each long flag that has one to its kubectl short alias.
func shortAliases() map[string]string {
	return map[string]string{"namespace": "n", "all-namespaces": "A", "output": "o", "filename": "f"}
}

// kubectlFlags are the flags every kubectl command takes.
func kubectlFlags() []string {
	return []string{"kubeconfig", "context", "namespace", "all-namespaces", "output"}
}

// controllerFlags are where the plugin finds reroll, and reroll's decision
// settings (controller.DecisionFlags), which override what reroll
// published.
func controllerFlags() []string {
	names := []string{"controller-namespace", "hash-key-secret"}
	for _, f := range controller.DecisionFlags(&controller.Decisions{}) {
		names = append(names, f.Name)
	}
	return names
}

// writeHelp writes the help of command name, which takes args, with the
// flags of fs.
func writeHelp(w io.Writer, name, args string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n  kubectl reroll %s %s [flags]\n", name, args)
	aliases := shortAliases()
	isAlias := map[string]bool{}
	for _, short := range aliases {
		isAlias[short] = true
	}
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !isAlias[f.Name] && !slices.Contains(kubectlFlags(), f.Name) && !slices.Contains(controllerFlags(), f.Name) {
			own = append(own, f)
		}
	})
	group := func(title string, flags []*flag.Flag) {
		if len(flags) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		for _, f := range flags {
			fmt.Fprintf(tw, "  %s\t%s\n", flagSynopsis(f, aliases[f.Name]), flagUsage(f))
		}
		_ = tw.Flush()
	}
	lookup := func(names []string) []*flag.Flag {
		var out []*flag.Flag
		for _, n := range names {
			if f := fs.Lookup(n); f != nil {
				out = append(out, f)
			}
		}
		return out
	}
	group("Flags", own)
	group("Kubectl flags", lookup(kubectlFlags()))
	group("reroll's settings (default: what reroll published; a flag given here overrides it, and the output says so)", lookup(controllerFlags()))
	fmt.Fprintf(w, "\n  -h, --help   help for %s\n", name)
}

// flagSynopsis returns "-n, --namespace string", or "    --context string"
// for a flag without a short alias, and no type for a boolean.
func flagSynopsis(f *flag.Flag, short string) string {
	name, _ := flag.UnquoteUsage(f)
	if d := decisionTable(&controller.Decisions{}).Lookup(f.Name); d != nil && name != "" {
		name = d.Kind()
	}
	s := "    --" + f.Name
	if short != "" {
		s = "-" + short + ", --" + f.Name
	}
	if name != "" {
		s += " " + name
	}
	return s
}

// flagUsage returns a flag's usage, with its default when it has one; a
// decision flag's default is what reroll published.
func flagUsage(f *flag.Flag) string {
	_, usage := flag.UnquoteUsage(f)
	if f.DefValue != "" && f.DefValue != "false" && decisionTable(&controller.Decisions{}).Lookup(f.Name) == nil {
		usage += fmt.Sprintf(" (default %q)", f.DefValue)
	}
	return strings.TrimSpace(usage)
}
