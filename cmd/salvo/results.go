package main

import (
	"context"
	"errors"
	"io"
)

// runResults is not built yet.
func runResults(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("results: not built yet")
}
