package kvsession_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
)

// A handler learns why its session is new.
func TestNewCause(t *testing.T) {
	// NoStoreTTL: the store keeps expired records, so the manager sees
	// them expire (a store that drops them reports CauseEnded).
	h := newHarness(t, kvsession.Config{IdleTimeout: time.Hour, NoStoreTTL: true})
	cause := func(cookie string) kvsession.NewCause {
		t.Helper()
		var got kvsession.NewCause
		h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
			var err error
			if got, err = kvsession.From(r).NewCause(); err != nil {
				t.Fatal(err)
			}
		})
		return got
	}
	live := h.loggedIn("ada")
	if got := cause(live); got != kvsession.CauseNone {
		t.Errorf("a stored session: cause %v", got)
	}
	if got := cause(""); got != kvsession.CauseNoCookie {
		t.Errorf("no cookie: cause %v", got)
	}
	if got := cause("session=forged." + strings.Repeat("A", 43)); got != kvsession.CauseInvalidCookie {
		t.Errorf("a forged cookie: cause %v", got)
	}
	revoked := h.loggedIn("bob")
	if _, err := h.m.RevokeUser(t.Context(), "bob", false); err != nil {
		t.Fatal(err)
	}
	if got := cause(revoked); got != kvsession.CauseEnded {
		t.Errorf("a revoked session: cause %v", got)
	}
	h.clock.Advance(2 * time.Hour)
	if got := cause(live); got != kvsession.CauseExpired {
		t.Errorf("an idle session: cause %v", got)
	}
	other := h.loggedIn("cy")
	h.serveWith(other, nil, func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		s.Destroy()
		if got, _ := s.NewCause(); got != kvsession.CauseDestroyed || got.String() != "destroyed" {
			t.Errorf("after Destroy: cause %v", got)
		}
	})
}

// An Admin made without a signing key or the application's Lifetime reads
// what the application stored: records carry their deadlines.
func TestAdminWithoutSigningKey(t *testing.T) {
	h := newHarness(t, kvsession.Config{Lifetime: 90 * time.Minute, IdleTimeout: 10 * time.Minute, NoStoreTTL: true})
	cookie := h.loggedIn("ada")
	key, _ := h.m.StoreKey(strings.TrimPrefix(cookie, "session="))
	admin, err := kvsession.NewAdmin(h.store, kvsession.AdminConfig{Now: h.clock.Now, ReadOnly: true, NoStoreTTL: true})
	if err != nil {
		t.Fatal(err)
	}
	info, err := admin.Info(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if want := h.clock.Now().Add(10 * time.Minute); !info.ExpiresAt.Equal(want) || info.User != "ada" {
		t.Errorf("Info = %+v; want user ada, expiring at the idle deadline %v", info, want)
	}
	h.clock.Advance(5 * time.Minute)
	h.mustDo(h.client(), "/untouched", "ok")
	h.raw("/get?key=v", cookie) // a read: refreshes the idle deadline
	info, _ = admin.Info(t.Context(), key)
	if want := h.clock.Now(); !info.LastSeen.Equal(want) {
		t.Errorf("LastSeen after an idle refresh = %v, want %v", info.LastSeen, want)
	}
	h.clock.Advance(80 * time.Minute) // past the 90-minute lifetime, which the Admin was not told
	if _, err := admin.Info(t.Context(), key); !errors.Is(err, kvsession.ErrExpired) || !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Info past the lifetime = %v, want ErrExpired and ErrNotFound", err)
	}
	for name, write := range map[string]func() error{
		"Revoke":     func() error { return admin.Revoke(t.Context(), key) },
		"RevokeUser": func() error { _, err := admin.RevokeUser(t.Context(), "ada", false); return err },
		"Cleanup":    func() error { _, err := admin.Cleanup(t.Context()); return err },
	} {
		if err := write(); !errors.Is(err, kvsession.ErrReadOnly) {
			t.Errorf("%s on a read-only Admin = %v, want ErrReadOnly", name, err)
		}
	}
	before := h.store.writes()
	admin.UserSessions(t.Context(), "ada") // the entry is stale now: a read-only Admin leaves it
	if h.store.writes() != before {
		t.Error("a read-only UserSessions wrote to the store")
	}
	if _, err := kvsession.NewAdmin(nil, kvsession.AdminConfig{}); !errors.Is(err, kvsession.ErrInvalidConfig) {
		t.Errorf("NewAdmin(nil) = %v", err)
	}
}

// The SessionInfo that Walk gives is the caller's own: writing to the
// Entry's bytes, which belong to the caller too, leaves it unchanged.
func TestAdminWalkInfoOwnsItsStrings(t *testing.T) {
	h := newHarness(t, kvsession.Config{Lifetime: time.Hour, RecordRemoteAddr: true})
	h.loggedIn("ada")
	var infos []kvsession.SessionInfo
	err := h.m.Admin().Walk(t.Context(), func(key string, e kvsession.Entry, info kvsession.SessionInfo, err error) error {
		if err == nil {
			infos = append(infos, info)
			for i := range e.Value {
				e.Value[i] = 'X'
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 {
		t.Fatalf("Walk reported %d live sessions, want 1", len(infos))
	}
	if info := infos[0]; info.User != "ada" || strings.Contains(info.UserAgent+info.RemoteAddr, "X") || info.RemoteAddr == "" {
		t.Errorf("after the caller overwrote the entry, its info reads %+v", info)
	}
}

// Walk reports every record under the prefix with what it is: live,
// expired, corrupt, or a revocation mark.
func TestAdminWalk(t *testing.T) {
	h := newHarness(t, kvsession.Config{Lifetime: time.Hour, NoStoreTTL: true})
	live := h.loggedIn("ada")
	h.loggedIn("bob")
	if _, err := h.m.RevokeUser(t.Context(), "bob", false); err != nil { // leaves a mark
		t.Fatal(err)
	}
	corruptKey := strings.Repeat("A", 43)
	h.store.Set(t.Context(), corruptKey, []byte("not a record"), time.Time{})
	h.clock.Advance(30 * time.Minute)
	h.mustDo(h.client(), "/set?key=v&value=1", "set") // expires 30 minutes after live
	h.clock.Advance(45 * time.Minute)                 // ada's session and bob's mark have expired, the last one has not
	counts := map[string]int{}
	err := h.m.Admin().Walk(t.Context(), func(key string, e kvsession.Entry, info kvsession.SessionInfo, err error) error {
		switch {
		case !h.m.IsSessionKey(key):
			counts["mark"]++
		case errors.Is(err, kvsession.ErrCorrupt):
			counts["corrupt"]++
		case errors.Is(err, kvsession.ErrExpired):
			counts["expired"]++
			if info.User != "ada" {
				t.Errorf("an expired session's info = %+v, want it filled in", info)
			}
		case err == nil:
			counts["live"]++
		default:
			t.Errorf("Walk reported %q with %v", key, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"mark": 1, "corrupt": 1, "expired": 1, "live": 1}; !equalCounts(counts, want) {
		// The mark is counted apart from the sessions, expired or not.
		t.Errorf("Walk counted %v, want %v", counts, want)
	}
	// With NoStoreTTL, Cleanup sweeps through Walk and CompareAndDelete:
	// the expired session and the expired mark go, the rest stays.
	if n, err := h.m.Cleanup(context.Background()); err != nil || n != 2 {
		t.Errorf("Cleanup with NoStoreTTL = %d, %v; want the expired session and mark", n, err)
	}
	if h.live(live) {
		t.Error("the expired session reads as live")
	}
	if got := h.store.Len(); got != 2 {
		t.Errorf("%d records after Cleanup, want the live session and the corrupt record", got)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Revocations are events of their own: each session an Admin deletes is
// an EventRevoked that says which operation deleted it and carries the
// session's LogID, a completed RevokeUser is one EventUserRevoked with its
// count, and Session.Destroy stays EventDestroyed.
func TestRevocationEvents(t *testing.T) {
	var log eventLog
	h := newHarness(t, kvsession.Config{MaxUserSessions: 2, OnEvent: log.record})
	// taken returns the events since the last call, keeping only revocations
	// and destructions.
	taken := func() []kvsession.Event {
		var got []kvsession.Event
		for _, e := range log.take() {
			switch e.Kind {
			case kvsession.EventRevoked, kvsession.EventUserRevoked, kvsession.EventDestroyed:
				got = append(got, e)
			}
		}
		return got
	}
	logID := func(cookie string) string {
		t.Helper()
		key, err := h.m.Key(strings.TrimPrefix(cookie, "session="))
		if err != nil {
			t.Fatal(err)
		}
		info, err := h.m.Info(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		return info.LogID
	}
	check := func(step string, want ...kvsession.Event) {
		t.Helper()
		if got := taken(); !slices.Equal(got, want) {
			t.Errorf("%s: events %+v, want %+v", step, got, want)
		}
	}

	first := h.loggedIn("ada")
	firstID := logID(first)
	h.clock.Advance(time.Minute) // last seen apart
	second := h.loggedIn("ada")
	secondID := logID(second)
	h.clock.Advance(time.Minute)
	taken()
	third := h.loggedIn("ada") // over the cap of 2: the least recently seen goes
	check("cap", kvsession.Event{Kind: kvsession.EventRevoked, LogID: firstID, Revocation: kvsession.RevocationCap})
	if h.live(first) {
		t.Error("the capped session is still live")
	}

	key, err := h.m.Key(strings.TrimPrefix(second, "session="))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.Revoke(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	check("Revoke", kvsession.Event{Kind: kvsession.EventRevoked, LogID: secondID, Revocation: kvsession.RevocationSession})

	fourth := h.loggedIn("ada")
	ids := []string{logID(third), logID(fourth)}
	taken()
	n, err := h.m.RevokeUser(t.Context(), "ada", false)
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v; want 2", n, err)
	}
	got := taken()
	if len(got) != 3 {
		t.Fatalf("RevokeUser: events %+v, want two EventRevoked and one EventUserRevoked", got)
	}
	var revokedIDs []string
	for _, e := range got[:2] {
		if e.Kind != kvsession.EventRevoked || e.Revocation != kvsession.RevocationUser {
			t.Errorf("RevokeUser: event %+v, want EventRevoked by RevocationUser", e)
		}
		revokedIDs = append(revokedIDs, e.LogID)
	}
	slices.Sort(ids)
	slices.Sort(revokedIDs)
	if !slices.Equal(revokedIDs, ids) {
		t.Errorf("RevokeUser revoked log IDs %q, want %q", revokedIDs, ids)
	}
	if want := (kvsession.Event{Kind: kvsession.EventUserRevoked, Count: 2}); got[2] != want {
		t.Errorf("RevokeUser: last event %+v, want %+v", got[2], want)
	}
	if kvsession.EventRevoked.String() != "revoked" || kvsession.EventUserRevoked.String() != "user revoked" ||
		kvsession.RevocationCap.String() != "cap" {
		t.Error("the new events or revocations are misnamed")
	}

	c := h.client()
	h.mustDo(c, "/count", "1")
	h.mustDo(c, "/destroy", "destroyed")
	if got := taken(); len(got) != 1 || got[0].Kind != kvsession.EventDestroyed || got[0].Revocation != kvsession.RevocationNone {
		t.Errorf("Destroy: events %+v, want one EventDestroyed", got)
	}
}

// Revoke reports a revocation only for a live session it deleted: a key
// already gone returns nil and reports nothing. A failed read before the
// delete is reported as a store error, and the session is deleted all the
// same.
func TestRevokeReportsWhatItDeleted(t *testing.T) {
	var log eventLog
	h := newHarness(t, kvsession.Config{OnEvent: log.record})
	taken := log.take
	keyOf := func(cookie string) string {
		t.Helper()
		key, err := h.m.StoreKey(strings.TrimPrefix(cookie, "session="))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}

	cookie := h.loggedIn("ada")
	key := keyOf(cookie)
	taken()
	if err := h.m.Revoke(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if got := taken(); len(got) != 1 || got[0].Kind != kvsession.EventRevoked {
		t.Errorf("first Revoke: events %+v, want one EventRevoked", got)
	}
	if err := h.m.Revoke(t.Context(), key); err != nil {
		t.Errorf("Revoke of a key already gone = %v, want nil", err)
	}
	if got := taken(); len(got) != 0 {
		t.Errorf("Revoke of a key already gone: events %+v, want none", got)
	}

	cookie = h.loggedIn("ada")
	key = keyOf(cookie)
	taken()
	h.store.setFaults(errStoreDown, nil, false) // reads fail, writes work
	if err := h.m.Revoke(t.Context(), key); err != nil {
		t.Fatalf("Revoke with failing reads = %v, want nil: the delete worked", err)
	}
	h.store.setFaults(nil, nil, false)
	got := taken()
	if len(got) != 2 || got[0].Kind != kvsession.EventStoreError || !errors.Is(got[0].Err, errStoreDown) ||
		got[1].Kind != kvsession.EventRevoked {
		t.Errorf("Revoke with failing reads: events %+v, want the store error, then EventRevoked", got)
	}
	if h.live(cookie) {
		t.Error("the session revoked while reads failed is still live")
	}
	// Its index entry names a deleted session: the user's listing skips it.
	if infos, err := h.m.UserSessions(t.Context(), "ada"); err != nil || len(infos) != 0 {
		t.Errorf("UserSessions = %+v, %v; want none", infos, err)
	}
}
