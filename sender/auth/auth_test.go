package auth

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNamesTheBadField(t *testing.T) {
	t.Parallel()
	h := Hash("tok")
	tests := []struct {
		name, file, want string
	}{
		// Not JSON at all.
		{"garbage", `{`, "not an auth file"},
		// A field the format does not have (a typo must not pass silently).
		{"unknown field", `{"users":[{"name":"a","token":"x","roles":["viewer"]}]}`, "token"},
		{"no users", `{"users":[]}`, "users: no user"},
		{"no name", fmt.Sprintf(`{"users":[{"name":" ","token_sha256":%q,"roles":["viewer"]}]}`, h), "users[0].name"},
		{"bad hash", `{"users":[{"name":"a","token_sha256":"abc","roles":["viewer"]}]}`, "users[0].token_sha256"},
		{"no roles", fmt.Sprintf(`{"users":[{"name":"a","token_sha256":%q}]}`, h), "users[0].roles"},
		{"unknown role", fmt.Sprintf(`{"users":[{"name":"a","token_sha256":%q,"roles":["root"]}]}`, h), "users[0].roles[0]"},
		{"same name twice", fmt.Sprintf(`{"users":[{"name":"a","token_sha256":%q,"roles":["viewer"]},{"name":"a","token_sha256":%q,"roles":["viewer"]}]}`, h, Hash("other")), "users[1].name"},
		{"same token twice", fmt.Sprintf(`{"users":[{"name":"a","token_sha256":%q,"roles":["viewer"]},{"name":"b","token_sha256":%q,"roles":["viewer"]}]}`, h, h), "users[1].token_sha256"},
		{"trailing data", fmt.Sprintf(`{"users":[{"name":"a","token_sha256":%q,"roles":["viewer"]}]} {}`, h), "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.json")
	err := WriteFile(path, File{Users: []User{
		{Name: "ana", TokenSHA256: Hash("ana-token"), Roles: []Role{Creator, Approver}, UserID: "u1"},
		{Name: "ops", TokenSHA256: Hash("ops-token"), Roles: []Role{Operator}},
		{Name: "root", TokenSHA256: Hash("root-token"), Roles: []Role{Admin}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	us, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		header string
		user   string // "" : refused
		can    Role
		cannot Role
	}{
		{"Bearer ana-token", "ana", Creator, Operator},
		{"bearer   ops-token  ", "ops", Operator, Creator}, // scheme case and spaces do not matter
		{"Bearer root-token", "root", Operator, ""},        // admin can do everything
		{"Bearer ana-token2", "", "", ""},
		{"Basic ana-token", "", "", ""},
		{"ana-token", "", "", ""},
		{"Bearer ", "", "", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		u, err := us.Authenticate(tt.header)
		if tt.user == "" {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("%q: %v, %v: want refused", tt.header, u, err)
			}
			continue
		}
		if err != nil || u.Name != tt.user {
			t.Errorf("%q: %v, %v: want %s", tt.header, u, err, tt.user)
			continue
		}
		if !u.Can(tt.can) || (tt.cannot != "" && u.Can(tt.cannot)) {
			t.Errorf("%q: roles %v: want %s and not %s", tt.header, u.Roles, tt.can, tt.cannot)
		}
	}
	single := Single("admin", "x", Admin)
	if u, err := single.Authenticate("Bearer x"); err != nil || u.Name != "admin" {
		t.Fatalf("single: %v %v", u, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"users":[{"name":"a","token_sha256":"` + Hash("t") + `","roles":["viewer"]}]}`))
	f.Add([]byte(`{"users":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		us, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parsed has named users with roles and valid hashes.
		for _, u := range us.users {
			if u.Name == "" || len(u.Roles) == 0 || u.hash == [32]byte{} && u.TokenSHA256 != Hash("") {
				t.Fatalf("accepted a bad user %+v", u)
			}
		}
	})
}
