package main

import (
	"context"
	"errors"
	"io"
)

// runAll is not built yet.
func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("all: not built yet")
}
