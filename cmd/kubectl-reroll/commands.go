package main

import (
	"context"
	"flag"
	"io"
)

// command is one subcommand: it defines its flags on fs and runs with the
// parsed options and its positional arguments.
type command struct {
	define func(fs *flag.FlagSet, o *options)
	run    func(ctx context.Context, o *options, args []string, out io.Writer) error
	// args says what the command takes, for its help.
	args string
}

// commands are the subcommands by name.
func commands() map[string]command {
	return map[string]command{
		"impact":  {define: defineImpactFlags, run: runImpact, args: "(configmap|secret)/NAME [-f FILE|-]"},
		"status":  {run: runStatus, args: "[KIND/NAME]"},
		"explain": {run: runExplain, args: "KIND/NAME"},
		"pause":   {define: defineDryRun, run: runPause, args: "KIND/NAME"},
		"resume":  {define: defineDryRun, run: runResume, args: "KIND/NAME"},
		"release": {define: defineDryRun, run: runRelease, args: "(configmap|secret)/NAME"},
	}
}
