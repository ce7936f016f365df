package storetest

import (
	"os"
	"testing"
)

// ServerEnv returns the value of the environment variable name, which
// tells a test where its server is (an address or a DSN). When the variable
// is unset the test is skipped, so that a plain go test passes on any
// machine, except under CI=true, where every backend must be tested for
// real and a missing server fails the test.
func ServerEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is unset; under CI=true every backend is tested against its server", name)
	}
	t.Skipf("%s is unset; set it to test against a real server", name)
	return ""
}
