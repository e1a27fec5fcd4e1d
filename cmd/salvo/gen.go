package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/salvopush/salvo/gameday"
	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/dynamodb"
)

// runGen generates synthetic data: "gen registry" writes a device registry with its audience
// file, "gen audience" draws a campaign audience from a registry.
func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		genUsage(stderr)
		return usageError("gen: want registry or audience")
	}
	switch args[0] {
	case "registry":
		return runGenRegistry(ctx, args[1:], stdout, stderr)
	case "audience":
		return runGenAudience(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		genUsage(stderr)
		return flag.ErrHelp
	}
	genUsage(stderr)
	return usageError("gen: unknown kind %q (want registry or audience)", args[0])
}

func genUsage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  salvo gen registry --users N (--out DIR | --to dynamodb://TABLE | both) [flags]
                      write a synthetic device registry (registry.bin, audience.csv, registry.json in DIR),
                      load it into a DynamoDB table, or both (the same registry: generation is seeded)
  salvo gen registry --from-csv FILE (--out DIR | --to dynamodb://TABLE) --apns-topic T --fcm-project P
                      import real devices (platform,token[,user_id] lines)
  salvo gen audience --from (DIR | dynamodb://TABLE) --out FILE [flags]
                      draw a campaign audience from a registry folder or table

Run "salvo gen registry -h" or "salvo gen audience -h" for the flags.`)
}

// specFlags names the flag that fills each spec field, so that a *loadgen.SpecError can name
// the flag.
type specFlags map[string]string

func (m specFlags) usageError(err error) error {
	var se *loadgen.SpecError
	if errors.As(err, &se) {
		if name, ok := m[se.Field]; ok {
			return usageError("--%s: %s", name, se.Reason)
		}
	}
	return err
}

func runGenRegistry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen registry", stderr)
	spec := loadgen.DefaultRegistrySpec()
	fs.IntVar(&spec.Users, "users", 0, "number of users (required)")
	fs.Float64Var(&spec.IOSShare, "ios-share", spec.IOSShare, "probability that a device is iOS (else Android)")
	fs.Float64Var(&spec.MultiDeviceShare, "multi-device-share", spec.MultiDeviceShare, "probability that a user has a second device")
	fs.Float64Var(&spec.InvalidShare, "invalid-share", spec.InvalidShare, "probability that a token is unregistered (starts with the mocks' marker)")
	fs.Float64Var(&spec.LongTokenShare, "long-token-share", spec.LongTokenShare, "probability that an APNs token has 160 hex digits instead of 64")
	fs.Uint64Var(&spec.Seed, "seed", spec.Seed, "seed of the pseudo-random generator")
	fs.StringVar(&spec.APNsTopic, "apns-topic", spec.APNsTopic, "APNs topic (bundle ID) of iOS devices; empty means the default")
	fs.StringVar(&spec.FCMProject, "fcm-project", spec.FCMProject, "FCM project ID of Android devices; empty means the default")
	out := fs.String("out", "", "output directory (--out, --to or both)")
	to := fs.String("to", "", "load the registry into DynamoDB: dynamodb://TABLE (endpoint and region from the AWS flags/environment); with --out, the same registry goes to both")
	fromCSV := fs.String("from-csv", "", "import real devices instead of generating: a tokens file of platform,token[,user_id] lines (needs --apns-topic / --fcm-project for the platforms it has)")
	var aws awsFlags
	aws.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *fromCSV != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["users"] {
			return usageError("--users and --from-csv: give one (generate, or import)")
		}
		return importRegistry(ctx, importSpec{csv: *fromCSV, out: *out, to: *to, topic: spec.APNsTopic, project: spec.FCMProject,
			topicSet: set["apns-topic"], projectSet: set["fcm-project"]}, &aws, stdout)
	}
	flags := specFlags{
		"Users": "users", "IOSShare": "ios-share", "MultiDeviceShare": "multi-device-share",
		"InvalidShare": "invalid-share", "LongTokenShare": "long-token-share", "Seed": "seed",
		"APNsTopic": "apns-topic", "FCMProject": "fcm-project",
	}
	if err := spec.Validate(); err != nil {
		return flags.usageError(err)
	}
	if *out == "" && *to == "" {
		return usageError("--out or --to: required (or both)")
	}
	if *to != "" {
		if err := genToDynamoDB(ctx, spec, *to, &aws, stdout); err != nil {
			return err
		}
		if *out == "" {
			return nil
		}
	}
	start := time.Now()
	sum, err := loadgen.WriteRegistry(ctx, spec, *out)
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "registry: %d users, %d devices (ios %d, android %d), %d with two devices, %d invalid tokens (ios %d, android %d)\n",
		sum.Users, sum.Devices.Total(), sum.Devices.IOS, sum.Devices.Android, sum.MultiDeviceUsers,
		sum.InvalidTokens.Total(), sum.InvalidTokens.IOS, sum.InvalidTokens.Android)
	fmt.Fprintf(stdout, "wrote %s (%d bytes, %.1f bytes/user), %s and %s in %s\n",
		filepath.Join(*out, sum.RegistryFile), sum.RegistryBytes, float64(sum.RegistryBytes)/float64(sum.Users),
		loadgen.AudienceFileName, loadgen.SummaryFileName, took.Round(time.Millisecond))
	return nil
}

func runGenAudience(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen audience", stderr)
	spec := loadgen.DefaultAudienceSpec()
	from := fs.String("from", "", "registry directory, or dynamodb://TABLE (scanned; endpoint and region from the AWS flags/environment) (required)")
	out := fs.String("out", "", "output file (required)")
	format := fs.String("format", string(spec.Format), "output format: csv, ndjson or json")
	fs.Float64Var(&spec.Sample, "sample", spec.Sample, "fraction of the registry's users to take")
	fs.Uint64Var(&spec.Seed, "seed", spec.Seed, "seed of the pseudo-random generator")
	fs.IntVar(&spec.Unknown, "unknown", spec.Unknown, "number of user IDs unknown to the registry to mix in")
	var aws awsFlags
	aws.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	spec.Format = sender.AudienceFormat(*format)
	flags := specFlags{"Sample": "sample", "Seed": "seed", "Unknown": "unknown", "Format": "format"}
	if err := spec.Validate(); err != nil {
		return flags.usageError(err)
	}
	switch {
	case *from == "":
		return usageError("--from: required")
	case *out == "":
		return usageError("--out: required")
	}
	start := time.Now()
	var reg loadgen.Users
	if table, ok := strings.CutPrefix(*from, "dynamodb://"); ok {
		list, err := scanRegistry(ctx, table, &aws)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registry: %d users scanned from DynamoDB table %s in %s\n", list.Len(), table, time.Since(start).Round(time.Millisecond))
		reg = list
	} else {
		disk, err := diskregistry.Open(*from)
		if err != nil {
			return usageError("--from: %v", err)
		}
		defer disk.Close()
		fmt.Fprintf(stdout, "registry: %d users, %d devices, %d bytes, loaded in %s\n",
			disk.Len(), disk.DeviceCount(), disk.Size(), time.Since(start).Round(time.Millisecond))
		reg = disk
	}
	sum, err := loadgen.WriteAudienceFile(ctx, reg, spec, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audience: %d users (%d known, %d unknown) written to %s as %s in %s\n",
		sum.Known+sum.Unknown, sum.Known, sum.Unknown, *out, spec.Format, time.Since(start).Round(time.Millisecond))
	return nil
}

// importSpec is what `salvo gen registry --from-csv` imports and where to.
type importSpec struct {
	csv, out, to         string
	topic, project       string
	topicSet, projectSet bool
}

// importRegistry loads a tokens file's devices (gameday.ReadTokens: one user per device
// unless the file names users) into an on-disk registry with its audience.csv, or into
// DynamoDB. Devices get the app IDs given: the APNs topic and the FCM project.
func importRegistry(ctx context.Context, in importSpec, aws *awsFlags, stdout io.Writer) error {
	toks, err := gameday.ReadTokens(in.csv)
	if err != nil {
		return usageError("--from-csv: %v", err)
	}
	switch {
	case len(toks.List) == 0:
		return usageError("--from-csv: %s has no device", in.csv)
	case toks.Count(sender.PlatformIOS) > 0 && !in.topicSet:
		return usageError("--apns-topic: required: %s has iOS devices (the topic is the app's bundle ID)", in.csv)
	case toks.Count(sender.PlatformAndroid) > 0 && !in.projectSet:
		return usageError("--fcm-project: required: %s has Android devices", in.csv)
	case (in.out == "") == (in.to == ""):
		return usageError("--out or --to: give one")
	}
	users, devices := toks.Devices(in.topic, in.project)
	slices.Sort(users) // the on-disk registry takes users in increasing order
	each := func(fn func(string, []sender.Device) error) error {
		for _, u := range users {
			if err := fn(u, devices[u]); err != nil {
				return err
			}
		}
		return nil
	}
	summary := fmt.Sprintf("%d users, %d devices (ios %d, android %d; %d duplicate lines dropped)", len(users), len(toks.List),
		toks.Count(sender.PlatformIOS), toks.Count(sender.PlatformAndroid), toks.Duplicates)
	if in.to != "" {
		table, ok := strings.CutPrefix(in.to, "dynamodb://")
		if !ok || table == "" {
			return usageError("--to: %q: want dynamodb://TABLE", in.to)
		}
		c, err := aws.clients(ctx)
		if err != nil {
			return err
		}
		if _, err := dynamodb.LoadRegistry(ctx, c.DynamoDB, table, each); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registry: imported %s into DynamoDB table %s\n", summary, table)
		return nil
	}
	w, err := diskregistry.NewWriter(in.out)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := each(w.Add); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	audience := "user_id\n" + strings.Join(users, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(in.out, loadgen.AudienceFileName), []byte(audience), 0o600); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fmt.Fprintf(stdout, "registry: imported %s into %s, with %s\n", summary, filepath.Join(in.out, diskregistry.FileName), loadgen.AudienceFileName)
	return nil
}
