package gameday

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/salvopush/salvo/sender"
)

// Token is one device of a tokens file.
type Token struct {
	Platform sender.Platform
	Token    string
	// UserID is the file's third column when given, else UserIDFor(Platform, Token).
	UserID string
	// Line is the token's line in its file (from 1).
	Line int
}

// Tokens is a tokens file read: its distinct devices in file order.
type Tokens struct {
	List []Token
	// Duplicates counts lines that repeated a device already listed (dropped).
	Duplicates int
}

// Count returns the number of devices of platform p.
func (t *Tokens) Count(p sender.Platform) int {
	n := 0
	for _, tok := range t.List {
		if tok.Platform == p {
			n++
		}
	}
	return n
}

// maxTokenLen bounds one token (the longest FCM registration tokens are a few hundred bytes).
const maxTokenLen = 4096

// UserIDFor is the user ID a device of a tokens file gets when the file names none: "t-"
// and 24 hex digits of SHA-256 over platform and token, so that the same device always has
// the same user in the registry (`salvo gen registry --from-csv`) and in a rehearsal.
func UserIDFor(p sender.Platform, token string) string {
	h := sha256.Sum256([]byte(p.String() + "," + token))
	return "t-" + hex.EncodeToString(h[:12])
}

// ParseTokens reads a tokens file: one "platform,token" per line, platform "ios" or
// "android", optionally a third column "user_id"; blank lines and lines starting with '#'
// are ignored, and so is a first line "platform,token[,user_id]" (a header). iOS tokens
// must be hex (APNs device tokens); Android tokens use the characters of FCM registration
// tokens. A device listed twice is kept once and counted in Duplicates. Errors name the
// line and never quote the token.
func ParseTokens(r io.Reader) (*Tokens, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 2*maxTokenLen)
	out := &Tokens{}
	seen := map[string]bool{}
	line := 0
	header := true
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cols := strings.Split(text, ",")
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		if header {
			header = false
			if strings.EqualFold(cols[0], "platform") {
				continue
			}
		}
		if len(cols) < 2 || len(cols) > 3 {
			return nil, fmt.Errorf("line %d: want platform,token[,user_id]", line)
		}
		var p sender.Platform
		switch cols[0] {
		case "ios":
			p = sender.PlatformIOS
		case "android":
			p = sender.PlatformAndroid
		default:
			return nil, fmt.Errorf("line %d: platform %q: want ios or android", line, cols[0])
		}
		tok := cols[1]
		if err := checkToken(p, tok); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		user := UserIDFor(p, tok)
		if len(cols) == 3 {
			if user = cols[2]; user == "" || len(user) > 256 {
				return nil, fmt.Errorf("line %d: user_id: want 1 to 256 bytes", line)
			}
		}
		key := p.String() + "," + tok
		if seen[key] {
			out.Duplicates++
			continue
		}
		seen[key] = true
		out.List = append(out.List, Token{Platform: p, Token: tok, UserID: user, Line: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return out, nil
}

// checkToken refuses a token that no provider would take: an iOS token that is not an even
// number of hex digits, an Android token with characters FCM tokens do not have.
func checkToken(p sender.Platform, tok string) error {
	if tok == "" || len(tok) > maxTokenLen {
		return fmt.Errorf("%s token: want 1 to %d characters", p, maxTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		b := tok[i]
		hexDigit := '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
		if p == sender.PlatformIOS && !hexDigit {
			return fmt.Errorf("ios token: not hex (character %d)", i+1)
		}
		if p == sender.PlatformAndroid && !(hexDigit || 'g' <= b && b <= 'z' || 'G' <= b && b <= 'Z' || b == '_' || b == '-' || b == ':' || b == '.') {
			return fmt.Errorf("android token: character %d is not one of an FCM registration token", i+1)
		}
	}
	if p == sender.PlatformIOS && len(tok)%2 != 0 {
		return fmt.Errorf("ios token: odd number of hex digits")
	}
	return nil
}

// ReadTokens reads the tokens file at path (ParseTokens); errors name the file.
func ReadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// tail is the end of a token, enough to find it in a file without printing it whole.
func tail(tok string) string {
	if len(tok) <= 6 {
		return "..."
	}
	return "..." + tok[len(tok)-6:]
}

// Devices returns the registry entries of the tokens: user ID to devices, in file order of
// first appearance. Devices get the app the config names (APNs topic, FCM project).
func (t *Tokens) Devices(topic, project string) (users []string, devices map[string][]sender.Device) {
	devices = map[string][]sender.Device{}
	for _, tok := range t.List {
		app := topic
		if tok.Platform == sender.PlatformAndroid {
			app = project
		}
		if _, ok := devices[tok.UserID]; !ok {
			users = append(users, tok.UserID)
		}
		devices[tok.UserID] = append(devices[tok.UserID], sender.Device{Platform: tok.Platform, Token: tok.Token, App: app})
	}
	return users, devices
}
