// Command k6 is k6 with Salvo's extension k6/x/salvo compiled in: what `xk6 build --with
// github.com/salvopush/salvo/loadgen/k6` produces, built with plain `go build` (`make k6`
// writes bin/k6). Every k6 command and flag works as in a stock k6.
package main

import (
	k6cmd "go.k6.io/k6/cmd"

	_ "github.com/salvopush/salvo/loadgen/k6" // registers k6/x/salvo
)

func main() {
	k6cmd.Execute()
}
