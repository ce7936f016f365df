package demoapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/kvsession/kvsession/examples/demo/demoapp"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/storetest"
)

// browser is one Chromium with its own profile: its own cookies.
type browser struct {
	t         *testing.T
	name      string
	ctx       context.Context
	artifacts string
}

// newBrowser starts a headless Chromium with a new, empty profile. The
// browser lives until the test ends or ctx is done.
func newBrowser(t *testing.T, ctx context.Context, execPath, name, artifacts string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(profileDir(t)),
		chromedp.WindowSize(1000, 1200),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start Chromium (%s): %v", execPath, err)
	}
	return &browser{t: t, name: name, ctx: bctx, artifacts: artifacts}
}

// profileDir returns a new empty directory for a browser profile, removed
// when the test ends. Chromium's helpers may still write to it for a moment
// after the browser stops, so the removal retries.
func profileDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "kvsession-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove %s", dir)
	})
	return dir
}

// stepTimeout bounds each step, so that a missing element fails the test
// soon, naming the step, rather than at the end of the test's budget.
const stepTimeout = 20 * time.Second

// step returns a context for one step. The browser has started, so a
// timeout on a derived context stops the step, not the browser.
func (b *browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, stepTimeout)
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

// navigate runs steps that load a page (a link, a form) and waits for it,
// failing unless the page answers 200.
func (b *browser) navigate(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
	if resp.Status != http.StatusOK {
		b.t.Fatalf("%s: %s: status %d", b.name, what, resp.Status)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("%s: text of %s: %v", b.name, sel, err)
	}
	return strings.TrimSpace(s)
}

func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: evaluate %s: %v", b.name, expr, err)
	}
	return v
}

// screenshot saves the page as a PNG in the artifacts directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("%s: screenshot: %v", b.name, err)
	}
	path := filepath.Join(b.artifacts, fmt.Sprintf("demo-browser-%s.png", name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// Phone is the viewport of a phone, in CSS pixels.
const phoneWidth, phoneHeight = 390, 844

// phone makes the browser a phone: a 390x844 viewport at 2x, mobile, with
// touch.
func (b *browser) phone() {
	b.t.Helper()
	b.do("emulate a phone", chromedp.EmulateViewport(phoneWidth, phoneHeight,
		chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
}

// checkFits fails unless the page fits the viewport's width: nothing
// scrolls sideways. It names the elements that stick out.
func (b *browser) checkFits(what string) {
	b.t.Helper()
	got := eval[[]int](b, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`)
	if got[0] <= got[1] {
		return
	}
	out := eval[[]string](b, `Array.from(document.querySelectorAll("body *")).
		filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5).
		map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "") +
			" right=" + Math.round(e.getBoundingClientRect().right)).slice(0, 12)`)
	b.t.Errorf("%s: %s: the page scrolls sideways: scrollWidth %d > clientWidth %d; sticking out: %v", b.name, what, got[0], got[1], out)
}

// sessionCookie returns the browser's session cookie for the server, or
// nil.
func (b *browser) sessionCookie(serverURL string) *network.Cookie {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{serverURL}})
	if err != nil {
		b.t.Fatalf("%s: get cookies: %v", b.name, err)
	}
	for _, c := range res.Cookies {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

// apiSessions loads /api/sessions as a page and decodes it.
func (b *browser) apiSessions(serverURL string) []demoapp.SessionJSON {
	b.t.Helper()
	b.navigate("open /api/sessions", chromedp.Navigate(serverURL+"/api/sessions"))
	var list []demoapp.SessionJSON
	body := eval[string](b, `document.body.innerText`)
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		b.t.Fatalf("%s: /api/sessions: %v in %q", b.name, err, body)
	}
	return list
}

// TestBrowser drives two real Chromium browsers through the demo, one of
// them phone-sized: log in, count across reloads, an HttpOnly cookie, two
// sessions of one user, "log out all other sessions" and the notice it
// leaves on the other device, a return to the card after a form, a page
// and a metrics panel that fit a phone, and a cookie replayed after
// logout.
func TestBrowser(t *testing.T) {
	chromium := storetest.ServerEnv(t, "KVSESSION_TEST_CHROMIUM")
	artifacts := os.Getenv("KVSESSION_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	srv := serveConfig(t, memstore.New(nil), demoapp.Config{Stats: func(context.Context) (demoapp.Stats, error) {
		return demoapp.Stats{ActiveSessions: 10000, ActiveAtLeast: true, Requests: 1234567, Merges: 12, Revocations: 3,
			StoreCalls: 4321, StoreP50: 41300 * time.Nanosecond, StoreP99: 12500 * time.Microsecond}, nil
	}})
	home := srv.URL + "/"
	a := newBrowser(t, ctx, chromium, "browser A", artifacts)
	b := newBrowser(t, ctx, chromium, "phone B", artifacts)
	b.phone()

	// A: no session until something changes.
	a.navigate("open the page", chromedp.Navigate(home))
	if got := a.text("#state"); !strings.Contains(got, "No session yet") {
		t.Errorf("first visit: state %q", got)
	}
	if c := a.sessionCookie(srv.URL); c != nil {
		t.Errorf("first visit set a cookie: %+v", c)
	}
	a.screenshot("01-anonymous")

	// A logs in.
	a.do("type a user name", chromedp.SendKeys(chromedp.CSS("#login-user"), "alice"))
	a.navigate("log in", chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
	if got := a.text("#user"); got != "alice" {
		t.Fatalf("after login, user %q, want alice", got)
	}

	// The count goes up and stays up across reloads.
	for i := 1; i <= 2; i++ {
		a.navigate("click +1", chromedp.Click(chromedp.CSS("#count-button")))
		if got := a.text("#count"); got != fmt.Sprint(i) {
			t.Errorf("after %d clicks, count %q", i, got)
		}
	}
	a.navigate("reload", chromedp.Reload())
	if got := a.text("#count"); got != "2" {
		t.Errorf("after a reload, count %q, want 2", got)
	}
	a.screenshot("02-logged-in-count-2")

	// The session cookie is HttpOnly: the page's scripts cannot see it.
	c := a.sessionCookie(srv.URL)
	if c == nil {
		t.Fatal("no session cookie in browser A")
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
		t.Errorf("cookie: HttpOnly %v, SameSite %q; want HttpOnly and Lax", c.HTTPOnly, c.SameSite)
	}
	if js := eval[string](a, `document.cookie`); strings.Contains(js, cookieName) || strings.Contains(js, c.Value) {
		t.Errorf("document.cookie = %q: the page can read the session cookie", js)
	}

	// B, a phone, logs in as the same user: two sessions, one current in
	// each.
	b.navigate("open the page", chromedp.Navigate(home))
	if w := eval[int](b, `window.innerWidth`); w != phoneWidth {
		t.Errorf("B: window.innerWidth %d, want %d", w, phoneWidth)
	}
	b.checkFits("first visit")
	b.screenshot("phone-01-anonymous")

	// The metrics panel fits the phone: its six tiles in two rows of three.
	b.navigate("open the live panel", chromedp.Navigate(srv.URL+"/stats"))
	if got := b.text("#stat-requests"); got != "1234567" {
		t.Errorf("B: the panel's requests %q, want 1234567", got)
	}
	tops := eval[[]float64](b, `Array.from(document.querySelectorAll("#metrics dl.stats > div")).map(e => Math.round(e.getBoundingClientRect().top))`)
	if rows := len(slices.Compact(slices.Clone(tops))); len(tops) != 6 || rows != 2 {
		t.Errorf("B: the panel's tiles at %v: want 6 tiles in 2 rows", tops)
	}
	b.checkFits("the live panel")
	b.screenshot("phone-02-metrics")
	b.navigate("back to the page", chromedp.Navigate(home))
	b.do("type a user name", chromedp.SendKeys(chromedp.CSS("#login-user"), "alice"))
	b.navigate("log in", chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
	if got := b.text("#count"); got != "0" {
		t.Errorf("B: count %q, want 0 (its own session)", got)
	}

	// A form brings B back to its card, even far down the page; a long
	// value does not widen the page.
	long := strings.Repeat("0123456789", 12)
	b.do("type a key", chromedp.SendKeys(chromedp.CSS(`#scratchpad input[name="key"]`), "a-rather-long-key-without-spaces"))
	b.do("type a value", chromedp.SendKeys(chromedp.CSS(`#scratchpad input[name="value"]`), long))
	b.navigate("set a scratchpad entry", chromedp.Click(chromedp.CSS(`#scratchpad button[type="submit"]`)))
	if got := eval[string](b, `location.hash`); got != "#scratchpad" {
		t.Errorf("B after setting an entry: location.hash %q, want #scratchpad", got)
	}
	if top := eval[float64](b, `document.getElementById("scratchpad").getBoundingClientRect().top`); top < -1 || top > 1 || eval[float64](b, `window.scrollY`) <= 0 {
		t.Errorf("B after setting an entry: the scratchpad card is at %.0f px, scrollY %.0f; want it at the top of the screen", top, eval[float64](b, `window.scrollY`))
	}
	if got := b.text("#scratchpad table.kv"); !strings.Contains(got, long) {
		t.Errorf("B: scratchpad %q, want the long value", got)
	}
	for _, x := range []*browser{a, b} {
		list := x.apiSessions(srv.URL)
		current := 0
		for _, s := range list {
			if s.Current {
				current++
			}
			if !strings.Contains(s.UserAgent, "Chrome") {
				t.Errorf("%s: user agent %q", x.name, s.UserAgent)
			}
		}
		if len(list) != 2 || current != 1 {
			t.Errorf("%s: /api/sessions = %+v, want two sessions, one current", x.name, list)
		}
	}
	a.navigate("open the page", chromedp.Navigate(home))
	if n := eval[int](a, `document.querySelectorAll("#sessions tr.session").length`); n != 2 {
		t.Errorf("A's page lists %d sessions, want 2", n)
	}
	a.screenshot("03-two-sessions")
	b.navigate("open the page", chromedp.Navigate(home))
	if n := eval[int](b, `document.querySelectorAll("#sessions tr.session").length`); n != 2 {
		t.Errorf("B's page lists %d sessions, want 2", n)
	}
	b.checkFits("two sessions")
	// The badge is one line of text: a range over its text has one box per
	// line.
	if n := eval[int](b, `(() => { const r = document.createRange(); r.selectNodeContents(document.querySelector("#sessions .badge")); return r.getClientRects().length })()`); n != 1 {
		t.Errorf("B: the \"this one\" badge takes %d lines, want 1", n)
	}
	b.screenshot("phone-03-two-sessions")

	// A logs out the others: B is anonymous at its next request.
	a.navigate("log out the others", chromedp.Click(chromedp.CSS("#logout-others")))
	if n := eval[int](a, `document.querySelectorAll("#sessions tr.session").length`); n != 1 {
		t.Errorf("after logout-others A's page lists %d sessions, want 1", n)
	}
	a.screenshot("04-others-logged-out")
	b.navigate("open the page again", chromedp.Navigate(home))
	if got := b.text("#state"); !strings.Contains(got, "No session yet") {
		t.Errorf("B after A logged out the others: state %q", got)
	}
	if got := b.text("#notice"); !strings.Contains(got, "logged out from another device") {
		t.Errorf("B after A logged out the others: notice %q", got)
	}
	b.checkFits("logged out from another device")
	b.screenshot("phone-05-logged-out-by-another-device")
	b.navigate("reload", chromedp.Reload())
	if n := eval[int](b, `document.querySelectorAll("#notice").length`); n != 0 {
		t.Errorf("B: the notice is still there after a reload: %q", b.text("#notice"))
	}

	// A logs out, then replays its old cookie: anonymous.
	old := a.sessionCookie(srv.URL)
	a.navigate("log out", chromedp.Click(chromedp.CSS("#logout")))
	if c := a.sessionCookie(srv.URL); c != nil {
		t.Errorf("after logout the browser still has cookie %+v", c)
	}
	httpOnly := true
	if _, err := chromedp.Call(a.ctx, network.SetCookie, network.SetCookieParams{
		Name: old.Name, Value: old.Value, URL: srv.URL, Path: "/", HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteLax,
	}); err != nil {
		t.Fatal(err)
	}
	a.navigate("reload with the old cookie", chromedp.Navigate(home))
	if got := a.text("#state"); !strings.Contains(got, "No session yet") {
		t.Errorf("old cookie replayed after logout: state %q, want anonymous", got)
	}
	if got := a.text("#count"); got != "0" {
		t.Errorf("old cookie replayed after logout: count %q, want 0", got)
	}
	a.screenshot("06-old-cookie-replayed")
	t.Logf("screenshots in %s", artifacts)
}
