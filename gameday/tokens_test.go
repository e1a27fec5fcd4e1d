package gameday

import (
	"strings"
	"testing"

	"github.com/salvopush/salvo/sender"
)

var (
	iosTok     = strings.Repeat("ab", 32)
	androidTok = "fcm-" + strings.Repeat("x", 150)
)

func TestParseTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		devices int    // distinct devices when valid
		dups    int    // duplicates dropped
		errLine string // "" means valid; else the line the error names
	}{
		// One device per line; comments, blank lines and a header are ignored.
		{"plain", "platform,token\n# test phones\n\nios," + iosTok + "\nandroid," + androidTok + "\n", 2, 0, ""},
		// Spaces around fields are trimmed.
		{"spaces", " ios , " + iosTok + " \n", 1, 0, ""},
		// A device twice is kept once and counted.
		{"duplicate", "ios," + iosTok + "\nios," + iosTok + "\n", 1, 1, ""},
		// The same token string on two platforms is two devices.
		{"two platforms", "ios," + iosTok + "\nandroid," + iosTok + "\n", 2, 0, ""},
		// A third column names the user.
		{"user id", "ios," + iosTok + ",u1\n", 1, 0, ""},
		// Only ios and android.
		{"bad platform", "ios," + iosTok + "\nwindows,abc\n", 0, 0, "line 2"},
		// APNs tokens are hex...
		{"ios not hex", "ios,xyz0\n", 0, 0, "line 1"},
		// ...with an even number of digits.
		{"ios odd", "ios,abc\n", 0, 0, "line 1"},
		// FCM tokens have no spaces or quotes.
		{"android bad char", "android,ab\"cd\n", 0, 0, "line 1"},
		// A line needs a token.
		{"no token", "ios\n", 0, 0, "line 1"},
		{"empty token", "ios,\n", 0, 0, "line 1"},
		// At most three columns.
		{"four columns", "ios," + iosTok + ",u,x\n", 0, 0, "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTokens(strings.NewReader(tc.in))
			if tc.errLine != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errLine) {
					t.Fatalf("error %v, want one naming %s", err, tc.errLine)
				}
				if strings.Contains(err.Error(), iosTok) || strings.Contains(err.Error(), androidTok) {
					t.Fatalf("the error quotes a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.List) != tc.devices || got.Duplicates != tc.dups {
				t.Fatalf("%d devices, %d duplicates; want %d, %d", len(got.List), got.Duplicates, tc.devices, tc.dups)
			}
		})
	}
}

func TestUserIDs(t *testing.T) {
	t.Parallel()
	toks, err := ParseTokens(strings.NewReader("ios," + iosTok + "\nandroid," + androidTok + ",shared\nios," + strings.Repeat("cd", 32) + ",shared\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := toks.List[0].UserID; got != UserIDFor(sender.PlatformIOS, iosTok) || !strings.HasPrefix(got, "t-") || len(got) != 26 {
		t.Errorf("derived user ID %q", got)
	}
	if UserIDFor(sender.PlatformIOS, iosTok) == UserIDFor(sender.PlatformAndroid, iosTok) {
		t.Error("the platform is not part of the derived user ID")
	}
	users, devices := toks.Devices("com.app", "proj")
	if len(users) != 2 || len(devices["shared"]) != 2 || devices["shared"][0].App != "proj" || devices["shared"][1].App != "com.app" {
		t.Errorf("devices: users %v, shared %+v", users, devices["shared"])
	}
}

// FuzzParseTokens: whatever the input, parsing never panics; every device it keeps is
// distinct, of a known platform, and passes the token check.
func FuzzParseTokens(f *testing.F) {
	f.Add("platform,token\nios," + iosTok + "\nandroid," + androidTok + ",u\n")
	f.Add("# x\n\nios,ab\nios,ab\n")
	f.Add("android,a:b.c-d_e\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseTokens(strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, tok := range got.List {
			if tok.Platform != sender.PlatformIOS && tok.Platform != sender.PlatformAndroid {
				t.Fatalf("platform %v", tok.Platform)
			}
			if err := checkToken(tok.Platform, tok.Token); err != nil {
				t.Fatalf("kept a bad token: %v", err)
			}
			key := tok.Platform.String() + "," + tok.Token
			if seen[key] {
				t.Fatalf("kept %s twice", key)
			}
			seen[key] = true
			if tok.UserID == "" {
				t.Fatal("no user ID")
			}
		}
	})
}
