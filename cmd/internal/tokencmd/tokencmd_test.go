package tokencmd

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/auth"
)

var secret = []byte("0123456789abcdef-secret")

func parse(t *testing.T, args ...string) *Flags {
	t.Helper()
	var f Flags
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return &f
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // a part of the error; "" for none
	}{
		{nil, "--role is required"},
		{[]string{"--role", "admin"}, `--role "admin": want viewer or operator`},
		{[]string{"--role", "viewer", "--ttl", "0s"}, "--ttl must be positive"},
		{[]string{"--role", "viewer", "--ttl", "-1m"}, "--ttl must be positive"},
		{[]string{"--role", "viewer"}, ""},
		{[]string{"--role", "operator", "--ttl", "10m"}, ""},
	} {
		err := parse(t, c.args...).Check()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestPrint(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	f := parse(t, "--role", "operator", "--ttl", "10m")
	var out bytes.Buffer
	if err := f.Print(&out, secret, now); err != nil {
		t.Fatal(err)
	}
	tok, ok := strings.CutSuffix(out.String(), "\n")
	if !ok || strings.Contains(tok, "\n") {
		t.Fatalf("output %q: want the token on one line", out.String())
	}
	role, exp, err := auth.Verify(secret, tok, now)
	if err != nil || role != "operator" || !exp.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("verify: %v %v %v", role, exp, err)
	}
	if parse(t).TTL != time.Hour {
		t.Fatal("default --ttl is not one hour")
	}
	out.Reset()
	if err := parse(t, "--role", "admin").Print(&out, secret, now); err == nil || out.Len() > 0 {
		t.Fatalf("bad role: %v, printed %q", err, out.String())
	}
	if err := f.Print(&out, []byte("short"), now); err == nil || out.Len() > 0 {
		t.Fatalf("short secret: %v, printed %q", err, out.String())
	}
}

// --ttl is capped by auth.max_token_ttl (30 days unless configured).
func TestMaxTTL(t *testing.T) {
	if err := parse(t, "--role", "operator", "--ttl", "876000h").Check(); err == nil || !strings.Contains(err.Error(), "auth.max_token_ttl") {
		t.Fatalf("100 years: %v", err)
	}
	if err := parse(t, "--role", "operator", "--ttl", "720h").Check(); err != nil {
		t.Fatalf("30 days: %v", err)
	}
	f := parse(t, "--role", "viewer", "--ttl", "2h")
	f.MaxTTL = time.Hour
	var out bytes.Buffer
	if err := f.Print(&out, secret, time.Now()); err == nil || out.Len() > 0 || !strings.Contains(err.Error(), "--ttl 2h0m0s is longer than the gateway accepts (auth.max_token_ttl: 1h0m0s)") {
		t.Fatalf("over a configured cap: %v, printed %q", err, out.String())
	}
}
