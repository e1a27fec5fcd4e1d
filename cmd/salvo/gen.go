package main

import (
	"context"
	"errors"
	"io"
)

// runGen is not built yet.
func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("gen: not built yet")
}
