// Command kubectl-reroll is reroll's kubectl plugin: `kubectl reroll` shows
// what reroll sees, and what a change will roll before it is made. It
// decides with the controller's own functions (controller.Inspector), and
// reads the cluster with get and list only; pause, resume and release write
// one of reroll's annotations each, and nothing else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// usage is the plugin's help.
const usage = `kubectl reroll: see what reroll sees, and what a change will roll.

Commands:
  impact (configmap|secret)/NAME [-f FILE|-]   what applying FILE would roll; without -f, who consumes what
  status [KIND/NAME]                           what reroll would do with each opted-in workload now
  explain KIND/NAME                            everything about one workload
  pause KIND/NAME [--dry-run]                  hold the rolls of a workload, ConfigMap, Secret or namespace
  resume KIND/NAME [--dry-run]                 end the pause: each held roll happens once
  release (configmap|secret)/NAME [--dry-run]  let the current change of the object through its holds
  version                                      print the version

Run "kubectl reroll COMMAND --help" for a command's flags.
`

// main runs the plugin and exits 1 on error, 2 on bad usage.
func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, connectKubeconfig))
}

// run runs one invocation and returns its exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, connect connector) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if args[0] == "__complete" {
		return runComplete(ctx, args[1:], stdout, connect)
	}
	if args[0] == "version" {
		fmt.Fprintln(stdout, "kubectl-reroll", version)
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kubectl reroll: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	o := &options{stdin: stdin, stderr: stderr, connector: connect}
	fs := flag.NewFlagSet("kubectl reroll "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, help by writeHelp
	fs.Usage = func() {}
	o.define(fs)
	if cmd.define != nil {
		cmd.define(fs, o)
	}
	positional, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		writeHelp(stdout, args[0], cmd.args, fs)
		return 0
	}
	if err == nil {
		o.givenOverrides(fs)
		err = o.validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "kubectl reroll %s: %v\nSee 'kubectl reroll %s --help'.\n", args[0], err, args[0])
		return 2
	}
	if err := cmd.run(ctx, o, positional, stdout); err != nil {
		fmt.Fprintf(stderr, "kubectl reroll %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// parseInterspersed parses flags anywhere among the arguments, as kubectl
// does, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
