package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/salvopush/salvo/localstack/npmemu"
)

// runEmulators runs the npm AWS emulators for process mode, with no Docker: fauxqs (SQS and
// S3) and dynalite (DynamoDB) in one Node 22 process from the tools folder (installed by
// `make emulators`, or by this command when missing), on 127.0.0.1. Once both answer it
// prints the environment that points salvo at them (and writes it to --env-file), then runs
// until SIGINT/SIGTERM; the emulators stop with it, however it ends.
func runEmulators(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("emulators", stderr)
	envFile := fs.String("env-file", "", "also write the environment, as export lines for a shell, to this file (atomically, once both emulators answer)")
	var ports npmemu.Ports
	fs.IntVar(&ports.Fauxqs, "sqs-port", 0, "fauxqs's port, for SQS and S3 (0: a free port)")
	fs.IntVar(&ports.Dynalite, "dynamodb-port", 0, "dynalite's port, for DynamoDB (0: a free port)")
	install := fs.Bool("install", true, "install Node 22, fauxqs and dynalite into the tools folder when they are missing (localstack/install-emulators.sh)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: salvo emulators [--env-file FILE] [--sqs-port P] [--dynamodb-port P]

Runs fauxqs (SQS, S3) and dynalite (DynamoDB) on 127.0.0.1 until SIGINT/SIGTERM and prints the
AWS environment for process mode. The tools folder is $SALVO_TOOLS_DIR, else .tools in the
checkout (make emulators fills it).`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, p := range []int{ports.Fauxqs, ports.Dynalite} {
		if p < 0 || p > 65535 {
			return usageError("--sqs-port and --dynamodb-port: %d is not a port", p)
		}
	}
	eps, stop, err := npmemu.LaunchOn(ctx, ports)
	if errors.Is(err, npmemu.ErrNoTools) && *install {
		if ierr := installEmulators(ctx, stderr); ierr != nil {
			return fmt.Errorf("%w; installing them failed: %w", err, ierr)
		}
		eps, stop, err = npmemu.LaunchOn(ctx, ports)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := stop(); err != nil {
			fmt.Fprintf(stderr, "salvo emulators: %v\n", err)
		}
	}()
	env := emulatorEnv(eps)
	if err := writeReady(*envFile, env); err != nil {
		return err
	}
	fmt.Fprint(stdout, env)
	hint := "export the lines above"
	if *envFile != "" {
		hint = "source " + *envFile
	}
	fmt.Fprintf(stderr, "salvo emulators: fauxqs (SQS, S3) on %s, dynalite (DynamoDB) on %s; %s; Ctrl-C stops them\n",
		eps.SQS, eps.DynamoDB, hint)
	<-ctx.Done()
	return nil
}

// emulatorEnv is the environment that points salvo at eps, as shell export lines. It names
// each service's endpoint: AWS_ENDPOINT_URL alone would send DynamoDB's calls to fauxqs.
func emulatorEnv(eps npmemu.Endpoints) string {
	var b strings.Builder
	b.WriteString("# salvo emulators: fauxqs serves SQS and S3, dynalite DynamoDB; one endpoint per service\n")
	for _, kv := range eps.Env() {
		fmt.Fprintf(&b, "export %s\n", kv)
	}
	return b.String()
}

// installEmulators runs localstack/install-emulators.sh into the tools folder, its output
// on w.
func installEmulators(ctx context.Context, w io.Writer) error {
	script, err := npmemu.InstallScript()
	if err != nil {
		return err
	}
	dir, err := npmemu.ToolsDir()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "salvo emulators: not installed in %s; running %s (what `make emulators` runs)\n", dir, script)
	cmd := exec.CommandContext(ctx, "bash", script, dir)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = os.Environ()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", script, err)
	}
	return nil
}
