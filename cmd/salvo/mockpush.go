package main

import (
	"context"
	"errors"
	"io"
)

// runMockpush is not built yet.
func runMockpush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("mockpush: not built yet")
}
