package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/kvsession/kvsession"
)

// The service, without protoc: plain Go structs, encoded as JSON by
// jsonCodec. A generated connect-go service uses the session the same way.
const (
	// AddProcedure adds AddRequest.Delta to a counter of the session,
	// creating the session if the call carried no token.
	AddProcedure = "/counter.v1.CounterService/Add"
	// GetProcedure returns the session's counters.
	GetProcedure = "/counter.v1.CounterService/Get"
)

// AddRequest is the request of AddProcedure.
type AddRequest struct {
	Counter string `json:"counter"`
	Delta   int    `json:"delta"`
}

// GetRequest is the request of GetProcedure.
type GetRequest struct{}

// Counters is the response of both procedures: the session's counters.
type Counters struct {
	Values map[string]int `json:"values"`
}

// jsonCodec is a connect codec for plain Go values, under the name
// "json": the content type is application/json, and curl can call the
// service. It replaces connect's own "json" codec, which handles only
// protobuf messages.
type jsonCodec struct{}

func (jsonCodec) Name() string                    { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error)   { return json.Marshal(v) }
func (jsonCodec) Unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// counterPrefix begins the session key of each counter: one key per
// counter, so that calls changing different counters merge.
const counterPrefix = "counter:"

// service holds the handlers of the counter service.
type service struct{ m *kvsession.Manager }

// handler returns the service's routes.
func (sv *service) handler() http.Handler {
	mux := http.NewServeMux()
	codec := connect.WithCodec(jsonCodec{})
	mux.Handle(AddProcedure, connect.NewUnaryHandler(AddProcedure, sv.add, codec))
	mux.Handle(GetProcedure, connect.NewUnaryHandler(GetProcedure, sv.get, codec))
	return mux
}

// The errors a call can get, beside CodeInvalidArgument for a bad request:
//
//   - CodeUnauthenticated: the call carried a token (or cookie) that names
//     no live session (revoked, destroyed, expired, or not signed by the
//     server's keys), or the session ended while the call ran, whose
//     change is then dropped. Start again without a token.
//   - CodeUnavailable: the session store failed; nothing was changed.
var (
	errEnded       = connect.NewError(connect.CodeUnauthenticated, errors.New("session ended: start a new one"))
	errNoSession   = connect.NewError(connect.CodeUnauthenticated, errors.New("no session: call Add first"))
	errUnavailable = connect.NewError(connect.CodeUnavailable, errors.New("session store unavailable"))
)

// session runs fn with the call's session, under the rules of
// Manager.Handler (Manager.Serve): the session comes from the token header
// (Config.Header) or the cookie, is saved when fn returns, and the
// response gets the new token (the header to a client that sent one, the
// cookie to a browser). A token that names no live session gives errEnded
// without running fn; so does a session that ended before its save.
// create says whether a call without a token may start a session.
func (sv *service) session(ctx context.Context, req connect.AnyRequest, resp http.Header, create bool, fn func(*kvsession.Session) error) error {
	var fnErr error
	var sess *kvsession.Session
	stored := false // the call's session was stored when it began
	err := sv.m.Serve(ctx, req.Header(), req.Peer().Addr, resp, func(s *kvsession.Session) {
		sess = s
		cause, err := s.NewCause()
		switch {
		case err != nil:
			fnErr = err
			return
		case cause == kvsession.CauseNoCookie && !create:
			fnErr = errNoSession
			return
		case cause != kvsession.CauseNone && cause != kvsession.CauseNoCookie:
			fnErr = errEnded // a token was presented: do not replace it silently
			return
		}
		stored = cause == kvsession.CauseNone
		fnErr = fn(s)
	})
	if err == nil {
		err = fnErr
	}
	if err == nil && stored {
		// A save that met a concurrent Destroy or revocation was dropped,
		// and the session is new again: the call's change did not land.
		if isNew, _ := sess.IsNew(); isNew {
			return errEnded
		}
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, kvsession.ErrLoad):
		return errUnavailable
	case err != nil:
		return connect.NewError(connect.CodeInternal, errors.New("session error"))
	}
	return nil
}

// add adds to a counter, creating the session on a call without a token.
func (sv *service) add(ctx context.Context, req *connect.Request[AddRequest]) (*connect.Response[Counters], error) {
	name := req.Msg.Counter
	if name == "" || len(name) > 64 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("counter: 1 to 64 bytes"))
	}
	resp := connect.NewResponse(&Counters{})
	err := sv.session(ctx, req, resp.Header(), true, func(s *kvsession.Session) error {
		n, err := kvsession.GetOr(s, counterPrefix+name, 0)
		if err != nil {
			return err
		}
		if err := s.Set(counterPrefix+name, n+req.Msg.Delta); err != nil {
			return err
		}
		resp.Msg.Values, err = counters(s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// get returns the counters of the call's session, which must exist.
func (sv *service) get(ctx context.Context, req *connect.Request[GetRequest]) (*connect.Response[Counters], error) {
	resp := connect.NewResponse(&Counters{})
	err := sv.session(ctx, req, resp.Header(), false, func(s *kvsession.Session) error {
		var err error
		resp.Msg.Values, err = counters(s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// counters returns the session's counters.
func counters(s *kvsession.Session) (map[string]int, error) {
	keys, err := s.Names()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, k := range keys {
		if name, ok := strings.CutPrefix(k, counterPrefix); ok {
			if out[name], err = kvsession.Get[int](s, k); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
