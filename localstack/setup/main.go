// Command setup creates Salvo's AWS resources (queues, bucket, tables) in LocalStack, the
// emulators or a real account, and is safe to run again:
//
//	go run ./localstack/setup -aws-endpoint http://127.0.0.1:4566
//
// Flags and AWS_* environment variables as in sender/awsconfig; resource names default to
// salvo-ranges.fifo, salvo-batches, salvo, salvo-registry, salvo-records and salvo-ledger.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/salvopush/salvo/localstack"
	"github.com/salvopush/salvo/sender/awsconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	cfg := awsconfig.FromEnv(os.Getenv)
	cfg.RegisterFlags(fs)
	names := awsconfig.DefaultNames()
	names.RegisterFlags(fs)
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	clients, err := cfg.Clients(ctx)
	if err != nil {
		return err
	}
	if err := localstack.Setup(ctx, clients, names); err != nil {
		return err
	}
	fmt.Printf("created or found: queues %s %s, bucket %s, tables %s %s %s\n",
		names.RangeQueue, names.BatchQueue, names.Bucket, names.RegistryTable, names.RecordsTable, names.LedgerTable)
	return nil
}
