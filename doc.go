// Package kvsession provides server-side HTTP sessions: the browser keeps
// only a random, signed session ID in a cookie, and the session's data
// lives on the server in a pluggable key-value [Store].
//
// Server-side sessions keep session data away from clients, can be
// destroyed for real (after logout a stolen cookie is worthless), and can
// be inspected and revoked while their users are away.
//
// # Overview
//
// Create a [Manager] from a store and a [Config], wrap your handlers with
// [Manager.Handler], and use the [Session] of each request:
//
//	m, err := kvsession.New(memstore.New(nil), kvsession.Config{Secrets: [][]byte{secret}})
//	...
//	http.ListenAndServe(addr, m.Handler(mux))
//
//	func count(w http.ResponseWriter, r *http.Request) {
//		s := kvsession.From(r)
//		n, err := kvsession.Get[int](s, "count") // ErrNoValue on the first visit
//		...
//		s.Set("count", n+1)
//	}
//
// The middleware works under any router built on net/http.
//
// # Words
//
// A secret signs session IDs (Config.Secrets). A key names a record in
// the store: the store key of a session is Config.KeyPrefix followed by a
// hash of its ID ([Manager.StoreKey]), and the admin operations and the
// command-line tool take store keys. A name names a value in a session
// (Get, Set, Delete, [Session.Names]).
//
// # Loading and saving
//
// A session is read from the store the first time a handler uses it, so a
// request that never touches it costs no store call; a request that only
// reads costs one read and no write. Changes to values, the user and
// permanence are saved once, just before the first byte of the response
// body (or when the handler returns); a change after that returns
// [ErrResponseStarted] and is not made. [Session.Regenerate] and
// [Session.Destroy] are different: they do their store work when they are
// called, on a context detached from the request's cancellation and bounded
// by Config.StoreTimeout, and return its error. When Destroy returns nil the
// record is gone; when Regenerate returns nil the old ID is dead and the new
// one stored and indexed. Nothing after that (a panic, a client that goes
// away, a failed save) undoes them.
// The cookie is sent when it changes (a new session or ID, a change of
// permanence, a cookie signed by an older secret) and with every save of a
// permanent session, to keep its Max-Age current. Values are stored as JSON and decoded only
// when read, into the type asked for: strings, numbers, booleans, time.Time,
// structs with exported fields, slices and maps all round-trip.
//
// # Concurrent requests
//
// Several requests of one session often run at once. A save is a
// compare-and-swap ([Store.CompareAndSwap], part of the required contract):
// if another request saved in between, the save reloads the session,
// replays this request's changes on it (each Set, Delete, Clear,
// SetPermanent and SetUser, in order) and tries again. So concurrent
// requests that change different values all land; two that change the same
// value leave one value whole, the last to save; a Clear replayed this way
// also removes what the other request added before it saved. A request that
// saves after a concurrent [Session.Destroy] or [Session.Regenerate] of the
// same session is dropped (EventSaveDropped): the old ID never comes back.
// A Regenerate that meets a concurrent Destroy, Regenerate or RevokeUser
// returns an error wrapping [ErrEnded] and goes on with a new, empty
// session.
//
// # Security model
//
//   - Session IDs are 256 random bits from crypto/rand by default, sent as
//     base64url(ID) "." base64url(HMAC-SHA256(secret, cookie name, ID)). A
//     cookie that fails the constant-time check is rejected before any
//     store call; binding the cookie name into the MAC stops a value from
//     being replayed under another name.
//   - Secret rotation: the first of Config.Secrets signs, all verify;
//     cookies signed by an older secret are re-signed with the first.
//   - The store holds only a SHA-256 of the ID (plus Config.KeyPrefix), so a
//     leaked store holds no usable session ID. Logs and events carry a short
//     hash of that ([Session.LogID]), never an ID or cookie.
//   - A missing, malformed, tampered, expired or unknown cookie gives a new
//     empty session, and the presented ID is never adopted: the first write
//     mints a new one.
//   - Only the cookie carries the ID: query strings, forms and other
//     headers are ignored, unless Config.Header opts into a header for API
//     clients; the token goes back in that header only to a request that
//     used it and carried no cookie that verified, never to a browser's.
//     When a request carries several cookies with the session's name, the
//     first one that verifies is used.
//   - Cookie names are matched byte for byte after trimming only the SP
//     and HTAB that RFC 6265 allows, as net/http does: a cookie named
//     "%5F_Host-session" or "\u2000__Host-session" is another cookie, as it
//     is to the browser that stored it.
//   - Cookies are HttpOnly, Secure, SameSite=Lax and Path=/ with no Domain
//     by default, and named "__Host-session": browsers let only this
//     origin, over HTTPS, set a __Host- cookie, so neither a sibling
//     subdomain nor a network attacker can plant one (see
//     Config.CookieName for what a planted cookie can do under other
//     names). The "__Host-" and "__Secure-" prefixes are checked at New.
//     Responses that set or clear the cookie carry "Cache-Control:
//     no-store" and "Vary: Cookie".
//   - Config.Secrets refuses short secrets and obviously weak ones (fewer than 8
//     distinct byte values). Session metadata is bounded: the user agent
//     to 512 bytes, the remote address (Config.RecordRemoteAddr) to the
//     parsed IP, the user ID to MaxUserBytes.
//   - Stored records are data only: decoding runs no code, is bounded by
//     Config.MaxRecordBytes and by a nesting limit, and a corrupt record
//     reads as missing and is reported (EventCorruptRecord).
//   - Call [Session.Regenerate] on login and on every change of
//     privilege, and [Session.Destroy] on logout.
//
// # Expiry
//
// A session ends Config.Lifetime after its creation, whatever the
// activity, and, with Config.IdleTimeout, after that long without a
// request. Both are enforced on the server. Idle deadlines are extended
// without rewriting the session's data ([Store.Touch]), at most once per
// Config.IdleRefresh. Stores pass the expiry to their engine's own TTL where
// it has one; others need [Manager.Cleanup], for instance run by
// [Manager.CleanupEvery] in a goroutine you own.
//
// # Failures
//
// The middleware fails closed. If the store fails while loading a session,
// the session's methods return an error wrapping [ErrLoad] and the
// response is replaced by Config.ErrorHandler (503 by default), without
// changing the client's cookie; once the store is back the same session
// works again. If a save fails, the response is the same error and no
// cookie is sent for the unsaved ID. Every store call is bounded by
// Config.StoreTimeout, except those of a bare *memstore.Store, which never
// block (or with NoStoreTimeout). A call on a request whose context is
// already done fails with the context's error, but a call once begun is not
// cut short by the client going away: it completes or times out.
// Config.DegradeOnLoadError opts into going on with an empty session that
// is never saved: [Session.Degraded] reports it, and every change returns
// an error wrapping [ErrLoad] (Destroy also clears the cookie), so a
// handler never believes it logged a user in or out while the store is
// down.
//
// # Events
//
// Lifecycle events ([Event]) go to Config.Logger and to Config.OnEvent, the
// hook that metrics are counted from: created, regenerated, destroyed,
// revoked, expired, invalid cookie, unknown ID, store error, corrupt
// record, merged conflict, dropped save, degraded, late change. An event
// carries the session's LogID, never its ID, its cookie or its user.
// Session.Destroy is reported as EventDestroyed; a session deleted by an
// Admin as EventRevoked, whose Event.Revocation says whether Revoke,
// RevokeUser or the per-user cap (Config.MaxUserSessions) deleted it; and a
// completed RevokeUser also as one EventUserRevoked, with the number of
// sessions it deleted in Event.Count.
//
// # Per-user sessions
//
// [Session.SetUser] binds a session to a user; [Manager.UserSessions] lists
// that user's sessions with their metadata and [Manager.RevokeUser] ends
// them all, or all but the current one. Revocation is airtight: RevokeUser
// writes a new revocation mark for the user before it reads the user's
// index, and every step that binds an ID to a user (a login, a Regenerate)
// indexes the ID and then checks the mark, giving the ID up if it changed.
// So once RevokeUser returns, no session bound to the user before the call
// is usable, even one that regenerated in a loop during it; reads pay
// nothing for it. The operations by store key (Info, Values, Revoke,
// UserSessions, RevokeUser, Cleanup) need no request and do their store
// work detached from the caller's cancellation.
//
// # Stores
//
// The [Store] contract holds what the manager's promises rest on: Get, Set
// and Delete with an absolute expiry, CompareAndSwap and CompareAndDelete
// (no lost updates, no resurrection), Touch (idle refresh without a
// rewrite) and the [UserIndex]. What a real engine may lack is optional, in
// separate interfaces found at run time: [Lister] (memcached cannot list)
// and [ExpiredDeleter] (engines with TTLs need no sweep); a missing one
// gives an error wrapping [errors.ErrUnsupported] where it is needed. The packages memstore and filestore are the standard-library
// stores; Redis, memcached, PostgreSQL, MySQL/MariaDB, SQLite and bbolt
// stores live in modules of their own. The package storetest checks any
// store against the contract.
//
// # Caveats
//
//   - A Session belongs to its request: do not use it after the handler
//     returns.
//   - Changes made after the response's first byte return
//     ErrResponseStarted (a Destroy then still deletes, but cannot clear
//     the cookie).
//   - The response writer passed to handlers wraps the original; it
//     implements Flush, ReadFrom and Unwrap, so http.ResponseController
//     reaches the original's other features.
package kvsession
