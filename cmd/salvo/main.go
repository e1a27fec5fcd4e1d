// Command salvo is the single binary of Salvo: the push sender, its mock providers, the load
// generators and the benchmark harness. Run "salvo help" for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: its one-line summary and its entry point.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands; each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"mockpush":  {"run the mock APNs and FCM servers", runMockpush},
		"gen":       {"generate synthetic registries and audiences", runGen},
		"serve":     {"run the campaign API server on the AWS backends", runServe},
		"setup":     {"create the SQS queues, S3 bucket and DynamoDB tables", runSetup},
		"emulators": {"run the npm AWS emulators (fauxqs, dynalite) for process mode and print their environment", runEmulators},
		"worker":    {"run a fan-out or send worker", runWorker},
		"all":       {"run API, fan-out and send workers in one process (embedded default)", runAll},
		"campaign":  {"create, prepare, press GO, watch, abort and redrive campaigns through the API", runCampaign},
		"report":    {"write the report of a campaign's sends (the real send on the day too) from the API", runReport},
		"bench":     {"run a benchmark scenario end to end and write its report", runBench},
		"gameday":   {"rehearse against the real APNs and FCM with silent pushes, safely, and report", runGameday},
		"results":   {"compare and render benchmark results", runResults},
		"load":      {"flood a push endpoint with a lean HTTP/2 client (mock speed checks)", runLoad},
		"gate":      {"compare the working tree with a base revision, side by side (the CI gate)", runGate},
	}
}

// exitError carries an exit code out of a subcommand.
type exitError struct {
	code int
	err  error
	// reported means the subcommand already printed why as its last line; run adds nothing.
	reported bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks bad flags or bad input: exit code 2.
func usageError(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and maps its error to an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "salvo: unknown command %q (run \"salvo help\")\n", args[0])
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.reported {
		return ee.code
	}
	fmt.Fprintf(stderr, "salvo %s: %v\n", args[0], err)
	if ee != nil {
		return ee.code
	}
	return 1
}

func printUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: salvo <command> [flags]\n\ncommands:")
	for _, name := range []string{"mockpush", "gen", "emulators", "setup", "serve", "worker", "all", "campaign", "report", "bench", "gameday", "results", "gate", "load"} {
		fmt.Fprintf(w, "  %-10s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nRun \"salvo <command> -h\" for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting; parseFlags turns its
// errors into usage errors.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("salvo "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, mapping a bad flag to a usage error (exit 2) and -h to flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
