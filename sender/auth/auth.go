// Package auth checks the bearer tokens of Salvo's campaign API against an auth file and
// says what each user may do.
//
// The auth file is JSON (see docs/api.md):
//
//	{"users": [{"name": "ana", "token_sha256": "<hex sha256 of the bearer token>",
//	            "roles": ["creator", "operator"], "user_id": "u123"}]}
//
// Only hashes are stored; a presented token is hashed and compared in constant time with
// every user's hash, so neither the file nor the timing gives a token away.
//
// Usage:
//
//	users, err := auth.Load("auth.json")
//	u, err := users.Authenticate(r.Header.Get("Authorization"))
//	if !u.Can(auth.Operator) { ... 403 ... }
package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Role names what a user may do.
type Role string

// Roles. Admin may do everything.
const (
	Viewer   Role = "viewer"   // read campaigns, workers, reports
	Creator  Role = "creator"  // create campaigns, upload audiences
	Approver Role = "approver" // approve or reject campaigns
	Operator Role = "operator" // prepare, GO, abort, redrive
	Admin    Role = "admin"    // all of the above
)

// Roles lists every role.
var roles = []Role{Viewer, Creator, Approver, Operator, Admin}

// User is one entry of the auth file.
type User struct {
	Name string `json:"name"`
	// TokenSHA256 is the hex SHA-256 of the user's bearer token.
	TokenSHA256 string `json:"token_sha256"`
	Roles       []Role `json:"roles"`
	// UserID, optional, is the user's own entry in the device registry (for test pushes).
	UserID string `json:"user_id,omitempty"`

	hash [sha256.Size]byte
}

// Can reports whether the user holds role (or admin).
func (u *User) Can(role Role) bool {
	return slices.Contains(u.Roles, role) || slices.Contains(u.Roles, Admin)
}

// Users is a loaded auth file. It is read-only and safe for concurrent use.
type Users struct {
	users []User
}

// File is the auth file's layout.
type File struct {
	Users []User `json:"users"`
}

// ErrUnauthenticated is returned for a missing, malformed or unknown token.
var ErrUnauthenticated = errors.New("a valid bearer token is required")

// Load reads and checks an auth file.
func Load(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	u, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return u, nil
}

// Parse checks an auth file's content and returns its users; an error names the field.
func Parse(data []byte) (*Users, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not an auth file: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if len(f.Users) == 0 {
		return nil, errors.New("users: no user")
	}
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	for i := range f.Users {
		u := &f.Users[i]
		field := fmt.Sprintf("users[%d]", i)
		if strings.TrimSpace(u.Name) == "" {
			return nil, fmt.Errorf("%s.name: required", field)
		}
		if names[u.Name] {
			return nil, fmt.Errorf("%s.name: %q appears twice", field, u.Name)
		}
		names[u.Name] = true
		h, err := hex.DecodeString(u.TokenSHA256)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("%s.token_sha256: want 64 hex digits (the SHA-256 of the token)", field)
		}
		copy(u.hash[:], h)
		if hashes[u.hash] {
			return nil, fmt.Errorf("%s.token_sha256: the same token as another user", field)
		}
		hashes[u.hash] = true
		if len(u.Roles) == 0 {
			return nil, fmt.Errorf("%s.roles: give at least one of %s", field, roleList())
		}
		for j, r := range u.Roles {
			if !slices.Contains(roles, r) {
				return nil, fmt.Errorf("%s.roles[%d]: %q is not one of %s", field, j, r, roleList())
			}
		}
	}
	return &Users{users: f.Users}, nil
}

func roleList() string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// Authenticate returns the user whose token an Authorization header carries ("Bearer
// <token>"), or ErrUnauthenticated. Every user's hash is compared, found or not, so the
// time taken does not depend on which user matched.
func (us *Users) Authenticate(header string) (*User, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, ErrUnauthenticated
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	found := -1
	for i := range us.users {
		if subtle.ConstantTimeCompare(sum[:], us.users[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, ErrUnauthenticated
	}
	u := us.users[found]
	return &u, nil
}

// Hash returns the hex SHA-256 of a token, as the auth file stores it.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a random bearer token (32 bytes, hex).
func NewToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Single returns users holding one user with the given token and roles (a process that
// makes its own token, such as `salvo all` without an auth file).
func Single(name, token string, rs ...Role) *Users {
	u := User{Name: name, TokenSHA256: Hash(token), Roles: rs}
	u.hash = sha256.Sum256([]byte(token))
	return &Users{users: []User{u}}
}

// WriteFile writes an auth file (mode 0600).
func WriteFile(path string, f File) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// ReadToken reads a bearer token from a file (the first line, spaces trimmed).
func ReadToken(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", fmt.Errorf("auth: read token: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	if t := strings.TrimSpace(line); t != "" {
		return t, nil
	}
	return "", errors.New("auth: the token file is empty")
}
