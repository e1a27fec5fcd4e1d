package loadgen_test

import (
	"fmt"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/sender"
)

// The generator is deterministic: this output is also a golden test of the token stream.
func ExampleRegistrySpec_Each() {
	spec := loadgen.DefaultRegistrySpec()
	spec.Users = 4
	spec.MultiDeviceShare = 0.5
	spec.InvalidShare = 0.25
	err := spec.Each(func(userID string, devices []sender.Device) error {
		for _, d := range devices {
			fmt.Printf("%s %-7s %s %s %.24s... (%d chars)\n", userID, d.Platform, d.App, d.Locale, d.Token, len(d.Token))
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// u00000001 ios     com.salvo.bench en-GB 2d8d0ce21d97642b3a4e664d... (64 chars)
	// u00000001 android salvo-bench en-GB _K52J1V1hFw5EByyMlO74m:A... (163 chars)
	// u00000002 ios     com.salvo.bench nl-NL dead04104d4c798f66b47982... (64 chars)
	// u00000003 ios     com.salvo.bench es-MX c6d91503e1cc38ffc9f76f49... (64 chars)
	// u00000004 android salvo-bench en-GB zjkoMUfVVBUUCxbsEF3DPw:A... (154 chars)
}
