package main

import (
	"context"
	"errors"
	"io"
)

// runLoad is not built yet.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("load: not built yet")
}
