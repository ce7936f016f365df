package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// signedFloor is the least a server-side session with signed IDs must do
// on a read, without any session library: take the ID and its MAC from
// the request's cookie, verify the MAC (HMAC-SHA256 over the cookie's name
// and the ID, as kvsession signs), derive the store key (SHA-256 of the
// ID, as kvsession keys records), look the record up in a map under a
// lock, and write the user. TestWrk loads it beside the server without
// sessions: the gap between the two is what the cryptography and the
// lookup cost, and the gap from it to kvsession is kvsession's own work.
// It serves only READ.
type signedFloor struct {
	mu      sync.RWMutex
	records map[string][]byte
	macs    sync.Pool // of hash.Hash: HMAC-SHA256 under signingKey
}

var b64 = base64.RawURLEncoding

// newSignedFloor returns the floor server, holding a record for each of
// the kvsession cookies given (as "name=value").
func newSignedFloor(cookies []string) *signedFloor {
	f := &signedFloor{records: map[string][]byte{}}
	f.macs.New = func() any { return hmac.New(sha256.New, signingKey) }
	for _, c := range cookies {
		_, value, _ := strings.Cut(c, "=")
		enc, _, _ := strings.Cut(value, ".")
		id, err := b64.DecodeString(enc)
		if err != nil {
			panic("bench: a kvsession cookie without a base64 ID: " + c)
		}
		sum := sha256.Sum256(id)
		f.records[b64.EncodeToString(sum[:])] = []byte(user)
	}
	return f
}

func (f *signedFloor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/read" {
		http.NotFound(w, r)
		return
	}
	var cookie string
	if c := r.Header["Cookie"]; len(c) > 0 {
		cookie = c[0]
	}
	name, value, _ := strings.Cut(cookie, "=")
	idEnc, macEnc, _ := strings.Cut(value, ".")
	var id, given, sum [sha256.Size]byte
	var enc [64]byte
	var in [128]byte
	n, err1 := b64.Decode(id[:], enc[:copy(enc[:], idEnc)])
	m, err2 := b64.Decode(given[:], enc[:copy(enc[:], macEnc)])
	if err1 != nil || err2 != nil || n != len(id) || m != len(given) || len(name) > len(in)-1 {
		http.Error(w, "bad cookie", http.StatusBadRequest)
		return
	}
	h := f.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(append(append(in[:0], name...), 0))
	h.Write(id[:])
	ok := hmac.Equal(h.Sum(sum[:0]), given[:])
	f.macs.Put(h)
	if !ok {
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	keySum := sha256.Sum256(id[:])
	var key [44]byte
	b64.Encode(key[:], keySum[:])
	f.mu.RLock()
	rec, found := f.records[string(key[:b64.EncodedLen(len(keySum))])]
	f.mu.RUnlock()
	if !found {
		http.Error(w, "no session", http.StatusNotFound)
		return
	}
	w.Write(rec)
}

// TestSignedFloor checks that the floor does the work it stands for: it
// serves a kvsession cookie's session, and refuses a cookie whose MAC or
// ID was changed, or that names no record.
func TestSignedFloor(t *testing.T) {
	var kv *instance
	for _, lib := range libraries {
		if lib.name == "kvsession" {
			kv = lib.new(t, "mem", options{})
		}
	}
	cookie := prepare(t, kv.handler, "/setup")
	other := prepare(t, kv.handler, "/setup")
	f := newSignedFloor([]string{cookie})
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, cookie string
		code         int
	}{
		{"valid", cookie, http.StatusOK},
		{"MAC changed", flip(cookie, len(cookie)-2), http.StatusBadRequest},
		{"ID changed", flip(cookie, strings.Index(cookie, "=")+2), http.StatusBadRequest},
		{"name changed", "x" + cookie, http.StatusBadRequest},
		{"no record", other, http.StatusNotFound},
		{"no cookie", "", http.StatusBadRequest},
	} {
		req := httptest.NewRequest("GET", "/read", nil)
		if tc.cookie != "" {
			req.Header.Set("Cookie", tc.cookie)
		}
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, req)
		if rec.Code != tc.code || tc.code == http.StatusOK && rec.Body.String() != user {
			t.Errorf("%s: %d %q, want %d", tc.name, rec.Code, rec.Body, tc.code)
		}
	}
}
