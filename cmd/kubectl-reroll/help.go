package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
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

// controllerFlags are reroll's settings the plugin must share with the
// controller it explains.
func controllerFlags() []string {
	return []string{"controller-namespace", "hash-key-secret", "extra-kinds", "reloader-annotations", "auto-all", "waves", "rollout-window"}
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
	group("reroll's settings (as the controller was started with)", lookup(controllerFlags()))
	fmt.Fprintf(w, "\n  -h, --help   help for %s\n", name)
}

// flagSynopsis returns "-n, --namespace string", or "    --context string"
// for a flag without a short alias, and no type for a boolean.
func flagSynopsis(f *flag.Flag, short string) string {
	name, _ := flag.UnquoteUsage(f)
	s := "    --" + f.Name
	if short != "" {
		s = "-" + short + ", --" + f.Name
	}
	if name != "" {
		s += " " + name
	}
	return s
}

// flagUsage returns a flag's usage, with its default when it has one.
func flagUsage(f *flag.Flag) string {
	_, usage := flag.UnquoteUsage(f)
	if f.DefValue != "" && f.DefValue != "false" {
		usage += fmt.Sprintf(" (default %q)", f.DefValue)
	}
	return strings.TrimSpace(usage)
}
