package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/diskregistry"
)

// Files written by WriteRegistry in its directory, besides diskregistry.FileName.
const (
	AudienceFileName = "audience.csv"
	SummaryFileName  = "registry.json"
	// SummarySchema names the layout of registry.json.
	SummarySchema = "salvo.registry/v1"
)

// PlatformCounts counts devices or tokens per platform.
type PlatformCounts struct {
	IOS     int `json:"ios"`
	Android int `json:"android"`
}

// Total is IOS + Android.
func (c PlatformCounts) Total() int { return c.IOS + c.Android }

func (c *PlatformCounts) add(p sender.Platform) {
	if p == sender.PlatformIOS {
		c.IOS++
	} else {
		c.Android++
	}
}

// Summary describes a generated registry; WriteRegistry writes it as registry.json. It holds
// nothing that varies between runs, so the file is as deterministic as the registry.
type Summary struct {
	Schema string `json:"schema"` // SummarySchema
	// FormatVersion is the diskregistry file format version.
	FormatVersion int `json:"format_version"`
	// Flags is the spec the registry was generated from, defaults filled in.
	Flags RegistrySpec `json:"flags"`
	Users int          `json:"users"`
	// MultiDeviceUsers counts users with two devices.
	MultiDeviceUsers int            `json:"multi_device_users"`
	Devices          PlatformCounts `json:"devices"`
	// InvalidTokens counts the tokens that start with mockpush.UnregisteredMarker.
	InvalidTokens PlatformCounts `json:"invalid_tokens"`
	// LongAPNsTokens counts the 160-hex-digit APNs tokens.
	LongAPNsTokens int `json:"long_apns_tokens"`
	// RegistryFile, AudienceFile: names inside the directory; RegistryBytes: the registry
	// file's size.
	RegistryFile  string `json:"registry_file"`
	RegistryBytes int64  `json:"registry_bytes"`
	AudienceFile  string `json:"audience_file"`
}

// WriteRegistry generates the registry of spec into dir (created if missing): the registry
// file (diskregistry.FileName), audience.csv listing every user, and registry.json holding
// the Summary. Each file replaces any previous one atomically; registry.json is removed
// first and written last, so its presence means the directory holds a complete registry.
// Equal specs give byte-identical files.
func WriteRegistry(ctx context.Context, spec RegistrySpec, dir string) (Summary, error) {
	if err := spec.Validate(); err != nil {
		return Summary{}, err
	}
	spec = spec.withDefaults()
	w, err := diskregistry.NewWriter(dir)
	if err != nil {
		return Summary{}, fmt.Errorf("loadgen: write registry: %w", err)
	}
	defer w.Abort()
	// registry.json marks a complete registry: drop an old one until this one is complete.
	if err := os.Remove(filepath.Join(dir, SummaryFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Summary{}, fmt.Errorf("loadgen: write registry: %w", err)
	}
	aud, err := newAtomicFile(filepath.Join(dir, AudienceFileName))
	if err != nil {
		return Summary{}, fmt.Errorf("loadgen: write registry: %w", err)
	}
	defer aud.abort()
	ids := newAudienceWriter(aud.w, sender.AudienceCSV)

	sum := Summary{
		Schema:        SummarySchema,
		FormatVersion: diskregistry.Version,
		Flags:         spec,
		RegistryFile:  diskregistry.FileName,
		AudienceFile:  AudienceFileName,
	}
	err = spec.Each(func(id string, devs []sender.Device) error {
		if sum.Users&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		sum.Users++
		if len(devs) > 1 {
			sum.MultiDeviceUsers++
		}
		for _, d := range devs {
			sum.Devices.add(d.Platform)
			if mockpush.IsUnregistered(d.Token) {
				sum.InvalidTokens.add(d.Platform)
			}
			if len(d.Token) == apnsLongTokenLen && d.Platform == sender.PlatformIOS {
				sum.LongAPNsTokens++
			}
		}
		if err := w.Add(id, devs); err != nil {
			return err
		}
		return ids.write(id)
	})
	if err == nil {
		err = ids.close()
	}
	if err == nil {
		err = w.Commit()
	}
	if err == nil {
		err = aud.commit()
	}
	if err != nil {
		return Summary{}, fmt.Errorf("loadgen: write registry: %w", err)
	}
	st, err := os.Stat(filepath.Join(dir, diskregistry.FileName))
	if err != nil {
		return Summary{}, fmt.Errorf("loadgen: write registry: %w", err)
	}
	sum.RegistryBytes = st.Size()
	js, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return Summary{}, fmt.Errorf("loadgen: write registry: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, SummaryFileName), append(js, '\n')); err != nil {
		return Summary{}, fmt.Errorf("loadgen: write registry: %w", err)
	}
	return sum, nil
}

// ReadSummary reads dir/registry.json.
func ReadSummary(dir string) (Summary, error) {
	var s Summary
	b, err := os.ReadFile(filepath.Join(dir, SummaryFileName))
	if err != nil {
		return s, fmt.Errorf("loadgen: read summary: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("loadgen: read summary %s: %w", filepath.Join(dir, SummaryFileName), err)
	}
	if s.Schema != SummarySchema {
		return s, fmt.Errorf("loadgen: read summary %s: schema %q, want %q", filepath.Join(dir, SummaryFileName), s.Schema, SummarySchema)
	}
	return s, nil
}
