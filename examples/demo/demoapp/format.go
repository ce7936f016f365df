package demoapp

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// ago describes the instant t, before now, the way people say it.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return span(d) + " ago"
}

// in describes the instant t, after now.
func in(now, t time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		return "now"
	}
	return "in " + span(d)
}

func span(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d < 10*time.Second:
		return "a few seconds"
	case d < time.Minute:
		return plural(int(d/time.Second), "second")
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	}
	return plural(int(d/(24*time.Hour)), "day")
}

// device names the browser and system of a User-Agent header, roughly:
// "Firefox on Linux", "curl". The page shows the whole header beside it.
func device(ua string) string {
	if ua == "" {
		return "unknown client"
	}
	browsers := []struct{ token, name string }{
		{"HeadlessChrome/", "Headless Chrome"},
		{"Edg/", "Edge"},
		{"OPR/", "Opera"},
		{"Firefox/", "Firefox"},
		{"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"},
		{"Safari/", "Safari"},
		{"curl/", "curl"},
		{"Wget/", "Wget"},
		{"Go-http-client/", "Go program"},
		{"python-requests/", "Python program"},
	}
	browser := ""
	for _, b := range browsers {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	if browser == "" {
		browser, _, _ = strings.Cut(ua, "/")
		if len(browser) > 30 {
			browser = browser[:30] + "…"
		}
	}
	systems := []struct{ token, name string }{
		{"Android", "Android"},
		{"iPhone", "iPhone"},
		{"iPad", "iPad"},
		{"Windows", "Windows"},
		{"Mac OS X", "macOS"},
		{"CrOS", "ChromeOS"},
		{"Linux", "Linux"},
	}
	for _, s := range systems {
		if strings.Contains(ua, s.token) {
			return browser + " on " + s.name
		}
	}
	return browser
}

// host returns the host of a remote address, without the port, which
// changes with every connection.
func host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
