package echosession_test

import "github.com/kvsession/kvsession/internal/middlewaretest"

// The helpers the framework modules share.
var (
	newManager       = middlewaretest.NewManager
	sessionCookie    = middlewaretest.SessionCookie
	pair             = middlewaretest.Pair
	checkCookieRules = middlewaretest.CheckCookieRules
)

// faulty is the shared fault-injecting store.
type faulty = middlewaretest.FaultStore
