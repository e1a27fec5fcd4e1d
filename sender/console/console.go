// Package console serves Salvo's operator console: plain HTML, CSS and JavaScript embedded
// in the binary, served by `salvo all` and `salvo serve` under /console/ on the API's own
// listener (api.Config.Console). The files hold no data and need no token; the page asks
// its user for their API token once, keeps it in the tab's sessionStorage (never in a URL,
// never in a cookie) and calls the campaign API with it, so the console can do exactly
// what the token's roles allow and no more.
//
// Screens: the campaign list; a campaign's detail (resolution, approvals and test pushes,
// the message and its edits, prepare with each worker's readiness and memory, the square GO
// button behind a typed confirmation of the campaign's name, a live chart of accepted over
// time with p95/p99 against the 5-second target, abort, cancel of a scheduled send, and the
// audit log); campaign creation with an audience upload, variants and a control group; and
// the recurring rules.
//
// Usage:
//
//	h := api.New(api.Config{Service: svc, Objects: objects, Users: users, Console: console.Handler()})
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the console's files under /console/. Every answer forbids framing (a GO
// button must not be clickable through someone else's page), allows scripts and styles from
// the console's own origin only, and sends no referrer.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
