package gameday

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// validConfig is a config that passes Validate: both providers, a silent payload.
const validConfig = `{
  "name": "rehearsal-1",
  "apns": {"url": "https://api.push.apple.com", "key_file": "AuthKey.p8", "key_id": "ABC123",
           "team_id": "TEAM123", "topic": "com.example.app", "ca_file": ""},
  "fcm": {"project_id": "my-project", "service_account_file": "sa.json",
          "url": "https://fcm.googleapis.com", "ca_file": ""},
  "tokens_file": "tokens.csv",
  "allowlist_file": "",
  "max_recipients": 100000,
  "rate_per_second": 0,
  "dry_run": false,
  "apns_payload": {"aps": {"content-available": 1}},
  "fcm_data": {"rehearsal": "1"}
}`

// edit returns validConfig with fn applied to its decoded form.
func edit(t *testing.T, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(validConfig), &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfig(t *testing.T) {
	t.Parallel()
	section := func(m map[string]any, name string) map[string]any { return m[name].(map[string]any) }
	tests := []struct {
		name  string
		edit  func(m map[string]any)
		field string // "" means valid
	}{
		// The contract's example is valid.
		{"contract example", func(map[string]any) {}, ""},
		// An alert would show: refused naming the payload.
		{"alert", func(m map[string]any) {
			m["apns_payload"] = map[string]any{"aps": map[string]any{"content-available": 1, "alert": "hi"}}
		}, "apns_payload"},
		// So would a sound or a badge.
		{"sound", func(m map[string]any) {
			m["apns_payload"] = map[string]any{"aps": map[string]any{"content-available": 1, "sound": "x"}}
		}, "apns_payload"},
		{"badge", func(m map[string]any) {
			m["apns_payload"] = map[string]any{"aps": map[string]any{"content-available": 1, "badge": 1}}
		}, "apns_payload"},
		// A payload without content-available is not a silent push.
		{"no content-available", func(m map[string]any) { m["apns_payload"] = map[string]any{"aps": map[string]any{}} }, "apns_payload"},
		// No payload: the default silent one.
		{"default payload", func(m map[string]any) { delete(m, "apns_payload") }, ""},
		// A key this version does not know (an FCM notification block) is refused by name.
		{"fcm notification", func(m map[string]any) { m["fcm_notification"] = map[string]any{"title": "hi"} }, "fcm_notification"},
		// Unknown keys inside a section too.
		{"apns alert key", func(m map[string]any) { section(m, "apns")["alert"] = "hi" }, "apns.alert"},
		// A silent FCM message is data-only: data is required.
		{"no fcm data", func(m map[string]any) { delete(m, "fcm_data") }, "fcm_data"},
		// fcm_data is string to string.
		{"fcm data not strings", func(m map[string]any) { m["fcm_data"] = map[string]any{"n": 1} }, "fcm_data"},
		// max_recipients is a required rail.
		{"no max", func(m map[string]any) { delete(m, "max_recipients") }, "max_recipients"},
		// A negative rate makes no sense.
		{"negative rate", func(m map[string]any) { m["rate_per_second"] = -1 }, "rate_per_second"},
		// An audience is required.
		{"no tokens file", func(m map[string]any) { m["tokens_file"] = "" }, "tokens_file"},
		// Either provider may be left out...
		{"fcm only", func(m map[string]any) { delete(m, "apns"); delete(m, "apns_payload") }, ""},
		// ...but not both.
		{"no provider", func(m map[string]any) { delete(m, "apns"); delete(m, "fcm") }, "apns"},
		// A payload for a provider the config does not have is a mistake.
		{"payload without apns", func(m map[string]any) { delete(m, "apns") }, "apns_payload"},
		// Endpoints are https://host[:port].
		{"http url", func(m map[string]any) { section(m, "apns")["url"] = "http://api.push.apple.com" }, "apns.url"},
		// An empty url is the provider's production endpoint.
		{"default url", func(m map[string]any) { section(m, "fcm")["url"] = "" }, ""},
		// The APNs key needs its ID, team and the app's topic.
		{"no topic", func(m map[string]any) { section(m, "apns")["topic"] = "" }, "apns.topic"},
		{"no key id", func(m map[string]any) { section(m, "apns")["key_id"] = "" }, "apns.key_id"},
		{"no project", func(m map[string]any) { section(m, "fcm")["project_id"] = "" }, "fcm.project_id"},
		// The name is typed to confirm: a plain word.
		{"bad name", func(m map[string]any) { m["name"] = "two words" }, "name"},
		// Process mode needs the API's URL and a token.
		{"api without token", func(m map[string]any) { m["api"] = map[string]any{"url": "http://127.0.0.1:8080"} }, "api.token_file"},
		{"api", func(m map[string]any) { m["api"] = map[string]any{"url": "http://127.0.0.1:8080", "token_file": "t"} }, ""},
		// The transport kind is burst or stock.
		{"bad transport", func(m map[string]any) { m["transport"] = "fast" }, "transport"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseConfig(edit(t, tc.edit))
			if err == nil {
				err = c.Validate()
			}
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
}

func TestConfigDefaultsAndResolve(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(edit(t, func(m map[string]any) {
		delete(m, "apns_payload")
		m["fcm"].(map[string]any)["url"] = ""
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if string(c.APNsPayload) != defaultAPNsPayload || c.FCM.URL != DefaultFCMURL || c.TTLSeconds != 300 || c.PreflightSample != 5 {
		t.Errorf("defaults: payload %s, fcm url %s, ttl %d, sample %d", c.APNsPayload, c.FCM.URL, c.TTLSeconds, c.PreflightSample)
	}
	c.Resolve("/etc/gameday")
	if c.TokensFile != "/etc/gameday/tokens.csv" || c.APNs.KeyFile != "/etc/gameday/AuthKey.p8" || c.AllowlistFile != "" {
		t.Errorf("resolve: tokens %s, key %s, allowlist %q", c.TokensFile, c.APNs.KeyFile, c.AllowlistFile)
	}
}

func TestParseConfigRefusesTrailingData(t *testing.T) {
	t.Parallel()
	for _, in := range []string{validConfig + "{}", "[]", "", strings.Repeat(" ", maxConfigBytes+1)} {
		if _, err := ParseConfig([]byte(in)); err == nil {
			t.Errorf("ParseConfig(%.20q...) accepted", in)
		}
	}
}

// FuzzConfig: whatever the input, parsing never panics, and a config that parses and
// validates is silent: its APNs payload passes the silence check and its FCM message has
// data.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(validConfig))
	f.Add([]byte(`{"name":"a","fcm":{"project_id":"p","service_account_file":"s"},"tokens_file":"t","max_recipients":1,"fcm_data":{"k":"v"}}`))
	f.Add([]byte(`{"name":"a","apns":{"key_file":"k","key_id":"i","team_id":"t","topic":"x"},"tokens_file":"t","max_recipients":1,"apns_payload":{"aps":{"content-available":1,"alert":"x"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil || c.Validate() != nil {
			return
		}
		if c.APNs != nil {
			var p struct {
				APS map[string]json.RawMessage `json:"aps"`
			}
			if json.Unmarshal(c.APNsPayload, &p) != nil || string(p.APS["content-available"]) != "1" {
				t.Fatalf("validated a payload that is not silent: %s", c.APNsPayload)
			}
			for _, k := range []string{"alert", "sound", "badge"} {
				if _, ok := p.APS[k]; ok {
					t.Fatalf("validated a payload with aps.%s: %s", k, c.APNsPayload)
				}
			}
		}
		if c.FCM != nil && len(c.FCMData) == 0 {
			t.Fatal("validated an FCM message without data")
		}
		if c.MaxRecipients < 1 {
			t.Fatal("validated a config without max_recipients")
		}
	})
}
