package gameday

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/provider"
	"github.com/salvopush/salvo/sender/transport"
)

// Provider endpoints used when the config leaves url empty.
const (
	DefaultAPNsURL = "https://api.push.apple.com"
	DefaultFCMURL  = "https://fcm.googleapis.com"
)

// defaultAPNsPayload is the payload when the config gives none: silent, nothing else.
const defaultAPNsPayload = `{"aps":{"content-available":1}}`

// Config is a rehearsal's configuration file (JSON). The keys of the contract keep their
// names and meanings; the others are additions. Relative file paths are relative to the
// config file's folder (Resolve).
type Config struct {
	// Name names the rehearsal (letters, digits, '-', '_'); the typed confirmation asks for it.
	Name string `json:"name"`
	// APNs and FCM are the providers; either may be left out when the audience has no device
	// of its platform.
	APNs *APNsConfig `json:"apns,omitempty"`
	FCM  *FCMConfig  `json:"fcm,omitempty"`
	// TokensFile is the audience: one "platform,token" per line (see ReadTokens).
	TokensFile string `json:"tokens_file"`
	// AllowlistFile, when set, lists every token that may be pushed (same format); a token of
	// the audience outside it refuses the run before any push.
	AllowlistFile string `json:"allowlist_file"`
	// MaxRecipients refuses an audience larger than this (required, at least 1).
	MaxRecipients int `json:"max_recipients"`
	// RatePerSecond caps the pushes per second to each provider (0: no cap).
	RatePerSecond float64 `json:"rate_per_second"`
	// DryRun sends FCM validate_only for every Android recipient and only the APNs preflight:
	// nothing is delivered.
	DryRun bool `json:"dry_run"`
	// APNsPayload is the APNs payload; it must be silent (aps.content-available 1, no alert,
	// sound or badge). Default {"aps":{"content-available":1}}.
	APNsPayload json.RawMessage `json:"apns_payload,omitempty"`
	// FCMData is the FCM data (string to string) of the data-only message; required when the
	// config has fcm.
	FCMData map[string]string `json:"fcm_data,omitempty"`

	// API, when set, drives a deployed `salvo serve` and its workers (process mode) instead
	// of the pipeline embedded in this process.
	API *APIConfig `json:"api,omitempty"`
	// TTLSeconds is the notifications' TTL at the providers (default 300).
	TTLSeconds int `json:"ttl_seconds,omitempty"`
	// DeliveryDeadlineSeconds is how long transient failures are retried (default: the TTL).
	DeliveryDeadlineSeconds int `json:"delivery_deadline_seconds,omitempty"`
	// RequireTarget makes the 5-second target a pass criterion (default: reported only).
	RequireTarget bool `json:"require_target,omitempty"`
	// Transport is "burst" (default) or "stock"; Connections is HTTP/2 connections per
	// provider (default 4); PushTimeoutSeconds bounds one push (default 10).
	Transport          string `json:"transport,omitempty"`
	Connections        int    `json:"connections,omitempty"`
	PushTimeoutSeconds int    `json:"push_timeout_seconds,omitempty"`
	// PreflightSample is how many Android tokens the preflight validates (default 5).
	PreflightSample int `json:"preflight_sample,omitempty"`
}

// APNsConfig locates and authenticates APNs (token auth).
type APNsConfig struct {
	URL     string `json:"url"`
	KeyFile string `json:"key_file"`
	KeyID   string `json:"key_id"`
	TeamID  string `json:"team_id"`
	Topic   string `json:"topic"`
	// CAFile adds trusted roots for the endpoint (empty: the system roots only).
	CAFile string `json:"ca_file"`
}

// FCMConfig locates and authenticates FCM HTTP v1. The OAuth token endpoint is the service
// account's token_uri.
type FCMConfig struct {
	ProjectID          string `json:"project_id"`
	ServiceAccountFile string `json:"service_account_file"`
	URL                string `json:"url"`
	// CAFile adds trusted roots for the endpoint and the token endpoint.
	CAFile string `json:"ca_file"`
}

// APIConfig names a deployed campaign API (process mode). The AWS backends (S3 for the
// workers' figures and feedback, DynamoDB for the registry) come from the standard AWS
// environment, as for `salvo serve`.
type APIConfig struct {
	// URL is the API's base URL; TokenFile holds a bearer token with the operator and
	// creator roles (or admin).
	URL       string `json:"url"`
	TokenFile string `json:"token_file"`
	// Workers is how many send workers must be ready before GO (default 1).
	Workers int `json:"workers,omitempty"`
	// Bucket and RegistryTable override the default resource names.
	Bucket        string `json:"bucket,omitempty"`
	RegistryTable string `json:"registry_table,omitempty"`
}

// ConfigError is a config that is bad or unsafe; Field names the offending key.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

func configErr(field, format string, a ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// maxConfigBytes bounds a config file.
const maxConfigBytes = 1 << 20

// ParseConfig decodes a config strictly: one JSON object, no unknown key (a key this
// version does not know, such as a notification block, is refused by name), nothing after
// it. It does not validate; call Validate.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, configErr("config", "larger than %d bytes", maxConfigBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		if key := unknownKey(data); key != "" {
			return nil, configErr(key, "unknown key (this version refuses what it does not know)")
		}
		return nil, jsonConfigErr(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, configErr("config", "data after the JSON object")
	}
	return &c, nil
}

// unknownKey returns the dotted path of the first key of data that Config does not have
// (sections included), or "".
func unknownKey(data []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return ""
	}
	sections := map[string]reflect.Type{"apns": reflect.TypeFor[APNsConfig](), "fcm": reflect.TypeFor[FCMConfig](),
		"api": reflect.TypeFor[APIConfig]()}
	known := jsonKeys(reflect.TypeFor[Config]())
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if !known[k] {
			return k
		}
		if typ, ok := sections[k]; ok {
			var sec map[string]json.RawMessage
			if json.Unmarshal(top[k], &sec) != nil {
				continue
			}
			fields := jsonKeys(typ)
			for _, sk := range slices.Sorted(maps.Keys(sec)) {
				if !fields[sk] {
					return k + "." + sk
				}
			}
		}
	}
	return ""
}

// jsonKeys are the JSON names of a struct type's fields.
func jsonKeys(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out[name] = true
	}
	return out
}

// jsonConfigErr names the field of a decoding error where the decoder knows it.
func jsonConfigErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return configErr(te.Field, "cannot hold a JSON %s", te.Value)
	}
	return configErr("config", "not a JSON object: %v", err)
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the config and fills the defaults; the first problem is a *ConfigError
// naming the key. A config that would display anything on a device is refused here.
func (c *Config) Validate() error {
	if !namePattern.MatchString(c.Name) {
		return configErr("name", "%q: want 1 to 64 letters, digits, '-' or '_'", c.Name)
	}
	if c.APNs == nil && c.FCM == nil {
		return configErr("apns", "give apns and/or fcm")
	}
	if err := c.validateAPNs(); err != nil {
		return err
	}
	if err := c.validateFCM(); err != nil {
		return err
	}
	switch {
	case c.TokensFile == "":
		return configErr("tokens_file", "required")
	case c.MaxRecipients < 1:
		return configErr("max_recipients", "%d: required, at least 1 (the cap on the audience)", c.MaxRecipients)
	case c.RatePerSecond < 0 || math.IsNaN(c.RatePerSecond) || math.IsInf(c.RatePerSecond, 0):
		return configErr("rate_per_second", "%v: want 0 (no cap) or more", c.RatePerSecond)
	case c.TTLSeconds < 0 || c.TTLSeconds > int(sender.MaxTTL.Seconds()):
		return configErr("ttl_seconds", "%d: want 0 (default 300) to %d", c.TTLSeconds, int(sender.MaxTTL.Seconds()))
	case c.DeliveryDeadlineSeconds < 0:
		return configErr("delivery_deadline_seconds", "%d is negative", c.DeliveryDeadlineSeconds)
	case c.Connections < 0:
		return configErr("connections", "%d is negative", c.Connections)
	case c.PushTimeoutSeconds < 0:
		return configErr("push_timeout_seconds", "%d is negative", c.PushTimeoutSeconds)
	case c.PreflightSample < 0:
		return configErr("preflight_sample", "%d is negative", c.PreflightSample)
	}
	if _, err := transport.ParseKind(c.Transport); err != nil {
		return configErr("transport", "%q: want burst or stock", c.Transport)
	}
	if c.TTLSeconds == 0 {
		c.TTLSeconds = 300
	}
	if c.DeliveryDeadlineSeconds > c.TTLSeconds {
		return configErr("delivery_deadline_seconds", "%d is longer than ttl_seconds %d", c.DeliveryDeadlineSeconds, c.TTLSeconds)
	}
	if c.PreflightSample == 0 {
		c.PreflightSample = 5
	}
	if a := c.API; a != nil {
		u, err := url.Parse(a.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return configErr("api.url", "%q: want http(s)://host[:port]", a.URL)
		case a.TokenFile == "":
			return configErr("api.token_file", "required (a bearer token with the creator and operator roles)")
		case a.Workers < 0:
			return configErr("api.workers", "%d is negative", a.Workers)
		}
		if a.Workers == 0 {
			a.Workers = 1
		}
	}
	return nil
}

func (c *Config) validateAPNs() error {
	a := c.APNs
	if a == nil {
		if len(c.APNsPayload) > 0 {
			return configErr("apns_payload", "given without an apns section")
		}
		return nil
	}
	if a.URL == "" {
		a.URL = DefaultAPNsURL
	}
	switch {
	case !provider.HTTPSHost(a.URL):
		return configErr("apns.url", "%q: want https://host[:port]", a.URL)
	case a.KeyFile == "":
		return configErr("apns.key_file", "required (the .p8 token-auth key)")
	case a.KeyID == "":
		return configErr("apns.key_id", "required")
	case a.TeamID == "":
		return configErr("apns.team_id", "required")
	case a.Topic == "":
		return configErr("apns.topic", "required (the app's bundle ID)")
	}
	if len(c.APNsPayload) == 0 {
		c.APNsPayload = json.RawMessage(defaultAPNsPayload)
	}
	if len(c.APNsPayload) > sender.MaxAPNsPayload {
		return configErr("apns_payload", "%d bytes exceeds the APNs limit of %d", len(c.APNsPayload), sender.MaxAPNsPayload)
	}
	if err := sender.CheckSilentAPNsPayload(c.APNsPayload); err != nil {
		return configErr("apns_payload", "not silent: %v", err)
	}
	return nil
}

func (c *Config) validateFCM() error {
	f := c.FCM
	if f == nil {
		if len(c.FCMData) > 0 {
			return configErr("fcm_data", "given without an fcm section")
		}
		return nil
	}
	if f.URL == "" {
		f.URL = DefaultFCMURL
	}
	switch {
	case !provider.HTTPSHost(f.URL):
		return configErr("fcm.url", "%q: want https://host[:port]", f.URL)
	case f.ServiceAccountFile == "":
		return configErr("fcm.service_account_file", "required")
	case f.ProjectID == "":
		return configErr("fcm.project_id", "required")
	case len(c.FCMData) == 0:
		return configErr("fcm_data", "required: a silent FCM message is data-only")
	}
	size := 0
	for k, v := range c.FCMData {
		size += len(k) + len(v)
	}
	if size > sender.MaxFCMMessage {
		return configErr("fcm_data", "%d bytes exceeds the FCM limit of %d", size, sender.MaxFCMMessage)
	}
	return nil
}

// Resolve makes the config's relative file paths relative to dir (the config file's folder).
func (c *Config) Resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.TokensFile)
	abs(&c.AllowlistFile)
	if a := c.APNs; a != nil {
		abs(&a.KeyFile)
		abs(&a.CAFile)
	}
	if f := c.FCM; f != nil {
		abs(&f.ServiceAccountFile)
		abs(&f.CAFile)
	}
	if a := c.API; a != nil {
		abs(&a.TokenFile)
	}
}

// scope is the APNs topic and the FCM project the rehearsal's devices belong to ("" for a
// provider the config leaves out).
func (c *Config) scope() (topic, project string) {
	if c.APNs != nil {
		topic = c.APNs.Topic
	}
	if c.FCM != nil {
		project = c.FCM.ProjectID
	}
	return topic, project
}
