package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/protocol"
)

var secret = []byte("0123456789abcdef-secret")

func TestMintVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := Mint(secret, protocol.RoleOperator, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSigned(tok) || strings.ContainsAny(tok, "+/= ") {
		t.Fatalf("token %q is not URL-safe", tok)
	}
	role, exp, err := Verify(secret, tok, now.Add(59*time.Minute))
	if err != nil || role != protocol.RoleOperator || !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("verify: %v %v %v", role, exp, err)
	}
	if _, _, err := Verify(secret, tok, now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, _, err := Verify([]byte("another-secret-0123456"), tok, now); !errors.Is(err, ErrSignature) {
		t.Fatalf("other secret: %v", err)
	}
	// Tampering with any part breaks the signature.
	parts := strings.Split(tok, ".")
	for i, tampered := range []string{
		strings.Replace(tok, ".operator.", ".viewer.", 1),
		strings.Join(append(append([]string{}, parts[:2]...), "9999999999", parts[3], parts[4]), "."),
		tok[:len(tok)-2] + "AA",
	} {
		if _, _, err := Verify(secret, tampered, now); err == nil {
			t.Fatalf("tampered token %d accepted", i)
		}
	}
	for _, bad := range []string{"", "eg1.", "eg1.operator.1.2", "eg1.a.b.c.d.e", "plain-key", strings.Repeat("eg1.x", 100)} {
		if _, _, err := Verify(secret, bad, now); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestMintRefusals(t *testing.T) {
	now := time.Now()
	if _, err := Mint([]byte("short"), protocol.RoleViewer, time.Hour, now); err == nil {
		t.Fatal("short secret accepted")
	}
	if _, err := Mint(secret, "admin", time.Hour, now); err == nil {
		t.Fatal("unknown role accepted")
	}
	if _, err := Mint(secret, protocol.RoleViewer, 0, now); err == nil {
		t.Fatal("zero ttl accepted")
	}
}

func TestAuthenticator(t *testing.T) {
	now := time.Now()
	a := &Authenticator{Secret: secret, Keys: []Key{{Name: "ops", Key: "key-one-0123456789", Role: protocol.RoleOperator}, {Name: "wall", Key: "key-two-0123456789", Role: protocol.RoleViewer}}}
	id, err := a.Check("key-two-0123456789", now)
	if err != nil || id != (Identity{Role: protocol.RoleViewer, Name: "wall"}) {
		t.Fatalf("%v %v", id, err)
	}
	tok, _ := Mint(secret, protocol.RoleViewer, time.Minute, now)
	if id, err := a.Check(tok, now); err != nil || id.Role != protocol.RoleViewer || id.Name != "token" {
		t.Fatalf("%v %v", id, err)
	}
	if _, err := a.Check("key-one-012345678", now); !errors.Is(err, ErrUnknown) {
		t.Fatalf("prefix of a key: %v", err)
	}
	if _, err := (&Authenticator{Keys: a.Keys}).Check(tok, now); !errors.Is(err, ErrUnknown) {
		t.Fatalf("signed token without a secret configured: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	now := time.Now()
	tok, _ := Mint(secret, protocol.RoleOperator, time.Hour, now)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Verify(secret, tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

// auth.max_token_ttl: a signed token that would outlive it is refused,
// however well signed (a 100-year token minted before the cap).
func TestAuthenticatorMaxTTL(t *testing.T) {
	now := time.Now()
	a := &Authenticator{Secret: secret, MaxTTL: 30 * 24 * time.Hour}
	long, _ := Mint(secret, protocol.RoleOperator, 876000*time.Hour, now)
	if _, err := a.Check(long, now); !errors.Is(err, ErrTooLong) {
		t.Fatalf("100-year token: %v, want ErrTooLong", err)
	}
	ok, _ := Mint(secret, protocol.RoleOperator, 30*24*time.Hour, now)
	if id, err := a.Check(ok, now); err != nil || id.Role != protocol.RoleOperator {
		t.Fatalf("token of the longest lifetime: %v %v", id, err)
	}
	if _, err := (&Authenticator{Secret: secret}).Check(long, now); err != nil {
		t.Fatalf("no cap: %v", err)
	}
}
