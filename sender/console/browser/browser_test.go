// Package browser_test drives the operator console in headless Chromium. It is a module of
// its own so that the Chrome DevTools protocol version chromedp needs stays out of the main
// module, where it would meet the one k6 pins (loadgen/k6).
package browser_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/salvopush/salvo/loadgen"
	"github.com/salvopush/salvo/mockpush"
	"github.com/salvopush/salvo/scenarios"
	"github.com/salvopush/salvo/sender"
	"github.com/salvopush/salvo/sender/api"
	"github.com/salvopush/salvo/sender/auth"
	"github.com/salvopush/salvo/sender/console"
	"github.com/salvopush/salvo/sender/diskregistry"
	"github.com/salvopush/salvo/sender/embedded"
	"github.com/salvopush/salvo/sender/transport"
)

// screenshots, when set, is where the end-to-end test saves its screenshots of the main
// screens (docs/console.md shows them): (cd sender/console/browser && go test -run EndToEnd -screenshots ../../../docs/console)
var screenshots = flag.String("screenshots", "", "save screenshots of the console's main screens to this folder")

// chromium returns the browser to drive: $SALVO_CHROMIUM, or the first of chromium,
// chromium-browser, google-chrome on PATH. Without one it skips the test, or fails it when
// CI=true (CI must run the browser tests).
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("console: browser test; skipped in -short mode")
	}
	for _, name := range []string{os.Getenv("SALVO_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const hint = "no Chromium found: run `make browser` (bash sender/console/install-chromium.sh) or set SALVO_CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal("console: " + hint + "; CI must run the browser tests")
	}
	t.Skip("console: " + hint)
	return ""
}

// browser starts headless Chromium with the flags this machine's closed network needs and a
// fresh profile, and returns its context (cancelled, and the browser gone, at cleanup).
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser now, without a timeout: it lives as long as ctx
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// person is one user of the test's auth file.
type person struct {
	name, token, userID string
	roles               []auth.Role
}

// rig is an embedded system with the console, a mock APNs and FCM that answer slowly
// enough for the live chart to have something to draw, and a registry.
type rig struct {
	t        *testing.T
	sys      *embedded.System
	mock     *mockpush.Server
	reg      *diskregistry.Registry
	audience string // a CSV of every user of the registry
	people   map[string]person
	admin    *api.Client
}

func newRig(t *testing.T, users int) *rig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	spec := loadgen.RegistrySpec{Users: users, IOSShare: 0.5, InvalidShare: 0.01, MultiDeviceShare: 0.2, Seed: 14}
	if _, err := loadgen.WriteRegistry(ctx, spec, filepath.Join(dir, "registry")); err != nil {
		t.Fatal(err)
	}
	reg, err := diskregistry.Open(filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	r := &rig{t: t, reg: reg, people: map[string]person{}}
	// Every user goes in the audience file; the team's own entries are users with a phone of
	// each platform (for test pushes).
	var csv strings.Builder
	csv.WriteString("user_id\n")
	var both []string
	err = reg.Each(ctx, func(user string, devs []sender.Device) error {
		fmt.Fprintln(&csv, user)
		var ios, android bool
		for _, d := range devs {
			ok := !mockpush.IsUnregistered(d.Token)
			ios = ios || (ok && d.Platform == sender.PlatformIOS)
			android = android || (ok && d.Platform == sender.PlatformAndroid)
		}
		if ios && android && len(devs) == 2 {
			both = append(both, user)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(both) < 3 {
		t.Fatalf("the registry has %d users with a phone of each platform, want 3", len(both))
	}
	r.audience = filepath.Join(dir, "audience.csv")
	if err := os.WriteFile(r.audience, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mockpush.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "mock")
	cfg.APNsTopic, cfg.FCMProject = loadgen.DefaultAPNsTopic, loadgen.DefaultFCMProject
	if r.mock, err = mockpush.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.mock.Close() })
	set, err := transport.Open(ctx, scenarios.MockTransports(r.mock.Ready(), 2, 64))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	var file auth.File
	for _, p := range []person{
		{"ana", "t-ana", both[0], []auth.Role{auth.Creator, auth.Viewer}},
		{"bob", "t-bob", both[1], []auth.Role{auth.Approver, auth.Viewer}},
		{"ops", "t-ops", both[2], []auth.Role{auth.Operator, auth.Viewer}},
		{"root", "t-root", "", []auth.Role{auth.Admin}},
	} {
		r.people[p.name] = p
		file.Users = append(file.Users, auth.User{Name: p.name, TokenSHA256: auth.Hash(p.token), Roles: p.roles, UserID: p.userID})
	}
	path := filepath.Join(dir, "auth.json")
	if err := auth.WriteFile(path, file); err != nil {
		t.Fatal(err)
	}
	people, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r.sys, err = embedded.Start(ctx, embedded.Config{Dir: filepath.Join(dir, "data"), Ephemeral: true, Registry: reg,
		Transports: set, Users: people, Token: "t-root", Send: 8, Chunk: 50, Console: console.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sys.Close() })
	r.admin = r.sys.Client()
	return r
}

// slowMock makes the mock answer in about 250 ms, so that a send of a few thousand takes a
// few seconds and the live chart has something to show.
func (r *rig) slowMock(t *testing.T) {
	t.Helper()
	lat := mockpush.Latency{FixedMS: 200, Distribution: "uniform", MeanMS: 50}
	if err := r.mock.SetFaults(mockpush.Faults{APNs: mockpush.PlatformFaults{Latency: lat}, FCM: mockpush.PlatformFaults{Latency: lat}}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) status(t *testing.T, id string) *sender.Status {
	t.Helper()
	st, err := r.admin.Status(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// run runs browser steps, failing the test with what was being done (and a screenshot of
// the page at that moment).
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		if img, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100)); len(img) > 0 {
			p := filepath.Join(t.ArtifactDir(), "failure.png") // kept with go test -artifacts
			_ = os.WriteFile(p, img, 0o600)
			t.Logf("screenshot of the failure: %s", p)
		}
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// js is a step that runs a JavaScript expression for its effect.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr)(ctx, tg)
		if errors.Is(err, chromedp.ErrJSUndefined) || errors.Is(err, chromedp.ErrJSNull) {
			return nil
		}
		return err
	})
}

// until is a step that waits (up to a minute) for a JavaScript expression to be true.
func until(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(60*time.Second),
			chromedp.WithPollingInterval(100*time.Millisecond))(ctx, tg)
		return err
	})
}

// shot saves a screenshot of the page as name.png in the screenshots folder, when one is
// given.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	run(t, ctx, "settle before "+name, chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(*screenshots, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signIn signs the browser in as who (signing out whoever was in), and opens hash.
func (r *rig) signIn(t *testing.T, ctx context.Context, who, hash string) {
	t.Helper()
	run(t, ctx, "sign in as "+who,
		chromedp.Navigate(r.sys.URL()+"/console/"),
		// Whoever is signed in (the tab keeps its token) signs out as a user would.
		until(`document.readyState === "complete" && (!document.querySelector("#login").hidden || !document.querySelector("#nav").hidden)`),
		js(`if (!document.querySelector("#nav").hidden) document.querySelector("#logout").click()`),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), r.people[who].token),
		chromedp.Click(chromedp.ID("sign-in")),
		until(fmt.Sprintf(`sessionStorage.getItem("salvo.token") === %q && !document.querySelector("#nav").hidden`, r.people[who].token)),
		js(fmt.Sprintf(`location.hash = %q`, hash)))
}

// waitText waits until the element sel's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`!!(document.querySelector(%q) || {}).textContent?.includes(%q)`, sel, want))
}

// TestConsoleEndToEnd drives the console in headless Chromium through the whole operator's
// flow against the mock providers: sign in with a token, create a campaign with an audience
// upload, variants and a control group, send oneself a test push and approve as another
// user, prepare, press the square GO (a click just outside it does nothing), watch it
// finish, and check the mock's counts; then abort a second campaign mid-send.
func TestConsoleEndToEnd(t *testing.T) {
	bin := chromium(t)
	r := newRig(t, 3000)
	ctx := browser(t, bin)
	bg := context.Background()

	// Sign in: a wrong token is refused on the page; the right one is kept in this tab's
	// sessionStorage and never appears in the URL.
	run(t, ctx, "open the console", chromedp.Navigate(r.sys.URL()+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	shot(t, ctx, "login")
	run(t, ctx, "a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token"),
		chromedp.Click(chromedp.ID("sign-in")),
		waitText("#login-error", "not valid"))
	r.signIn(t, ctx, "ana", "#/new")
	stored := eval[string](t, ctx, `sessionStorage.getItem("salvo.token")`)
	href := eval[string](t, ctx, `location.href`)
	if stored != "t-ana" || strings.Contains(href, "t-ana") {
		t.Fatalf("token in sessionStorage %q, URL %q: want it stored and out of the URL", stored, href)
	}

	// Create: an uploaded audience, two variants and a control group, one approval needed.
	const name = "Saturday final spot"
	run(t, ctx, "fill the create form",
		chromedp.WaitVisible(chromedp.ID("create-form")),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name=id]`), "spot"),
		chromedp.SetUploadFiles(chromedp.CSS(`input[name=file]`), []string{r.audience}),
		chromedp.SendKeys(chromedp.CSS(`#m-ios-title`), "The final is on"),
		chromedp.SendKeys(chromedp.CSS(`#m-ios-body`), "Tap to watch the last minutes live"),
		chromedp.SendKeys(chromedp.CSS(`#m-android-title`), "The final is on"),
		chromedp.SendKeys(chromedp.CSS(`#m-android-body`), "Tap to watch the last minutes live"),
		chromedp.Click(chromedp.ID("add-variant")),
		chromedp.Click(chromedp.ID("add-variant")),
		chromedp.SetValue(chromedp.CSS(`tr.variant:nth-child(1) input[name=v-percent]`), "45"),
		chromedp.SetValue(chromedp.CSS(`tr.variant:nth-child(2) input[name=v-percent]`), "45"),
		chromedp.SendKeys(chromedp.CSS(`tr.variant:nth-child(2) input[name=v-ios]`), "Last minutes: watch now"),
		chromedp.SendKeys(chromedp.CSS(`tr.variant:nth-child(2) input[name=v-android]`), "Last minutes: watch now"),
		chromedp.SetValue(chromedp.CSS(`input[name=control]`), "10"),
		chromedp.SetValue(chromedp.CSS(`input[name=approvals]`), "1"))
	shot(t, ctx, "create")
	run(t, ctx, "create", chromedp.Click(chromedp.ID("create")), waitText("#campaign h1", "resolved"))
	st := r.status(t, "spot")
	if st.Campaign.Spec.ApprovalsRequired != 1 || len(st.Campaign.Spec.Variants) != 2 || st.Campaign.Spec.ControlPercent != 10 ||
		st.Campaign.CreatedBy != "ana" || st.Campaign.Resolution.Recipients == 0 {
		t.Fatalf("created campaign %+v", st.Campaign)
	}
	recipients := int64(st.Campaign.Resolution.Recipients)

	// Ana sends herself a copy: both variants on both her phones.
	run(t, ctx, "ana's test push", chromedp.Click(chromedp.ID("test-push")), waitText("#test-results", "accepted"))
	rows := eval[int](t, ctx, `document.querySelectorAll("#test-results tbody tr").length`)
	if rows != 4 {
		t.Fatalf("ana's test push shows %d results, want 2 variants x 2 phones", rows)
	}

	// Bob approves, after his own test push.
	r.signIn(t, ctx, "bob", "#/c/spot")
	run(t, ctx, "bob's test push and approval",
		waitText("#approval-summary", "0 of 1 approvals"),
		chromedp.Click(chromedp.ID("test-push")), waitText("#test-results", "accepted"),
		chromedp.Click(chromedp.ID("approve")), waitText("#approval-summary", "1 of 1 approvals (bob)"),
		// Whoever approved sees so, and no second Approve button.
		until(`document.querySelector("#approve") === null && document.querySelector("#approvals").textContent.includes("You approved it.")`))
	shot(t, ctx, "review")

	// The operator prepares and sees each worker's readiness and memory.
	r.signIn(t, ctx, "ops", "#/c/spot")
	run(t, ctx, "prepare", chromedp.WaitVisible(chromedp.ID("prepare-button")), chromedp.Click(chromedp.ID("prepare-button")),
		waitText("#prepared", "Prepared"), waitText("#readiness", "iB"))

	// GO is disarmed until the campaign's name is typed.
	if !eval[bool](t, ctx, `document.querySelector("#go").disabled`) {
		t.Fatal("GO is armed before the campaign's name was typed")
	}
	run(t, ctx, "type the name", chromedp.SendKeys(chromedp.ID("confirm"), name),
		until(`!document.querySelector("#go").disabled`))
	shot(t, ctx, "go")
	r.slowMock(t)

	// A click just outside the square, on each side, does nothing.
	run(t, ctx, "scroll to GO", chromedp.ScrollIntoView(chromedp.ID("go")))
	box := eval[struct{ X, Y, W, H float64 }](t, ctx, `(() => { const b = document.querySelector("#go").getBoundingClientRect();
		return {X: b.x, Y: b.y, W: b.width, H: b.height}; })()`)
	if box.W != box.H || box.W < 100 {
		t.Fatalf("GO is %gx%g, want a square", box.W, box.H)
	}
	for _, p := range [][2]float64{{box.X + box.W + 2, box.Y + box.H/2}, {box.X - 2, box.Y + box.H/2},
		{box.X + box.W/2, box.Y - 2}, {box.X + box.W/2, box.Y + box.H + 2}, {box.X + box.W + 1, box.Y + box.H + 1}} {
		run(t, ctx, "click beside GO", chromedp.MouseClickXY(p[0], p[1]))
	}
	run(t, ctx, "let a wrong press land", chromedp.Sleep(1500*time.Millisecond))
	if st := r.status(t, "spot"); st.Campaign.Send != nil {
		t.Fatalf("a click outside the square pressed GO: %+v", st.Campaign.Send)
	}
	// The square's own corner pixel presses it.
	run(t, ctx, "press GO", chromedp.MouseClickXY(box.X+1, box.Y+1), waitText("#campaign h1", "sending"))

	// Watch it: the live chart while it sends, and the end.
	run(t, ctx, "watch it send", until(`(() => { const a = document.querySelector("#accepted strong");
		return !!a && Number(a.textContent.replaceAll(",", "")) > 0; })()`))
	shot(t, ctx, "live")
	run(t, ctx, "watch it finish", waitText("#campaign h1", "done"), waitText("#result", "accepted"))
	shot(t, ctx, "done")
	st = r.status(t, "spot")
	res := st.Campaign.Result
	if res == nil || res.Accepted+res.Rejected != recipients || res.Failed != 0 {
		t.Fatalf("result %+v for %d recipients", res, recipients)
	}
	var gos, tests int
	for _, a := range st.Campaign.Audit {
		switch a.Action {
		case "go":
			gos++
		case "test-push":
			tests++
		}
	}
	if gos != 1 || tests != 2 {
		t.Fatalf("audit has %d GO and %d test pushes, want 1 and 2", gos, tests)
	}
	// The mock saw every recipient accepted once, plus the 8 test pushes under their own
	// collapse IDs, and no duplicate.
	ms := r.mock.Stats()
	unique := ms.APNs.Unique + ms.FCM.Unique
	dups := ms.APNs.Duplicates + ms.FCM.Duplicates
	if unique != res.Accepted+8 || dups != 0 {
		t.Fatalf("mock: %d unique, %d duplicates; want %d accepted + 8 test pushes, no duplicate", unique, dups, res.Accepted)
	}

	// Abort, from the console, a second campaign mid-send (created and pressed through the
	// API).
	second := sender.CampaignSpec{Name: "Second spot", Audience: sender.AudienceSource{Object: st.Campaign.Spec.Audience.Object},
		Message: st.Campaign.Spec.Message}
	if _, err := r.admin.Create(bg, "second", second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for r.status(t, "second").Campaign.State != sender.StateResolved && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.admin.Prepare(bg, "second", 1); err != nil {
		t.Fatal(err)
	}
	for !r.status(t, "second").Prepared && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := r.admin.Press(bg, "second"); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "abort the second campaign",
		js(`location.hash = "#/c/second"`),
		chromedp.WaitVisible(chromedp.ID("abort")), chromedp.Click(chromedp.ID("abort")),
		chromedp.WaitVisible(chromedp.ID("abort-reason")),
		chromedp.SendKeys(chromedp.ID("abort-reason"), "wrong copy"),
		chromedp.Click(chromedp.ID("abort-confirm")),
		waitText("#campaign h1", "aborted"))
	st = r.status(t, "second")
	if st.Campaign.Aborted == nil || st.Campaign.Aborted.By != "ops" || st.Campaign.Aborted.Detail != "wrong copy" {
		t.Fatalf("aborted %+v, want by ops for a wrong copy", st.Campaign.Aborted)
	}

	// The list shows both, as the operator left them.
	run(t, ctx, "the list", js(`location.hash = "#/"`),
		waitText("#campaigns", "Saturday final spot"), waitText("#campaigns", "aborted"))
	shot(t, ctx, "list")
	if n := eval[int](t, ctx, `document.querySelectorAll("#campaigns tbody tr").length`); n != 2 {
		t.Fatalf("the list shows %d campaigns, want 2", n)
	}

	// A recurring rule, created in the console by its creator.
	r.signIn(t, ctx, "ana", "#/schedules")
	run(t, ctx, "create a rule",
		chromedp.WaitVisible(chromedp.ID("rule-form")),
		chromedp.SendKeys(chromedp.CSS(`#rule-form input[name=id]`), "day1-unfinished"),
		chromedp.SendKeys(chromedp.CSS(`#rule-form input[name=cron]`), "0 9 * * *"),
		chromedp.SetValue(chromedp.CSS(`#rule-form input[name=tz]`), "Europe/Berlin"),
		chromedp.SendKeys(chromedp.CSS(`#rule-form input[name=name]`), "Day 1: finish signing up"),
		chromedp.SendKeys(chromedp.CSS(`#rule-form input[name=object]`), st.Campaign.Spec.Audience.Object),
		chromedp.SendKeys(chromedp.ID("r-ios-title"), "One step left"),
		chromedp.SendKeys(chromedp.ID("r-android-title"), "One step left"),
		chromedp.Click(chromedp.CSS(`#rule-form button[type=submit]`)),
		waitText("#rules", "day1-unfinished"))
	shot(t, ctx, "schedules")
	rules, err := r.admin.Rules(bg)
	if err != nil || len(rules) != 1 || rules[0].CreatedBy != "ana" || rules[0].TimeZone != "Europe/Berlin" || rules[0].Next == nil {
		t.Fatalf("rules %+v %v", rules, err)
	}
}
