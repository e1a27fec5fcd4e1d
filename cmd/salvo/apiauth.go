package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/salvopush/salvo/sender/auth"
)

// authFlags choose how `salvo all` and `salvo serve` check the API's callers.
type authFlags struct {
	file      string
	insecure  bool
	tokenFile string
}

func (a *authFlags) register(fs *flag.FlagSet, defaultTokenFile string) {
	fs.StringVar(&a.file, "auth-file", "", "users and their roles, with SHA-256 hashes of their bearer tokens (docs/api.md)")
	fs.BoolVar(&a.insecure, "insecure-no-auth", false, "serve the API without authentication (anyone who reaches the address may create and press GO)")
	fs.StringVar(&a.tokenFile, "token-file", defaultTokenFile,
		"without --auth-file on a loopback address: where to write the admin token made at start (mode 0600)")
}

// users returns who may call the API listening on addr: the auth file's users; nobody
// checked (--insecure-no-auth); or, on a loopback address without an auth file, one admin
// whose token is made now and written to the token file (returned too, for a client in
// this process). A non-loopback address without an auth file is refused.
func (a *authFlags) users(addr string, stdout io.Writer) (*auth.Users, string, error) {
	switch {
	case a.file != "" && a.insecure:
		return nil, "", usageError("--auth-file and --insecure-no-auth exclude each other")
	case a.file != "":
		u, err := auth.Load(a.file)
		if err != nil {
			return nil, "", usageError("--auth-file: %v", err)
		}
		return u, "", nil
	case a.insecure:
		fmt.Fprintf(stdout, "WARNING: the campaign API on %s checks no credentials (--insecure-no-auth)\n", addr)
		return nil, "", nil
	}
	if !loopback(addr) {
		return nil, "", usageError("--addr %s is not a loopback address: give --auth-file (or, knowingly, --insecure-no-auth)", addr)
	}
	if a.tokenFile == "" {
		return nil, "", usageError("--token-file is empty: give it, or --auth-file")
	}
	token := auth.NewToken()
	if err := os.MkdirAll(filepath.Dir(a.tokenFile), 0o700); err != nil {
		return nil, "", fmt.Errorf("token file: %w", err)
	}
	if err := os.WriteFile(a.tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return nil, "", fmt.Errorf("token file: %w", err)
	}
	fmt.Fprintf(stdout, "API admin token written to %s (send it as \"Authorization: Bearer <token>\", or use salvo campaign --token-file)\n", a.tokenFile)
	return auth.Single("admin", token, auth.Admin), token, nil
}

// loopback reports whether addr (host:port) listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// workflowFlags configure the approval workflow of `salvo all` and `salvo serve`.
type workflowFlags struct {
	approveWithoutTestPush bool
}

func (w *workflowFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&w.approveWithoutTestPush, "approve-without-test-push", false,
		"let approvers approve without first sending themselves a test push of the campaign's current message")
}
