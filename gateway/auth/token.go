// Package auth mints and verifies edgegate's signed, time-limited tokens and
// checks static API keys. Tokens look like
//
//	eg1.<role>.<expiry, Unix seconds>.<nonce>.<signature>
//
// where the signature is HMAC-SHA256 over "eg1.<role>.<expiry>.<nonce>"
// with the gateway's secret, base64url without padding. They carry no
// secret and are safe in a URL; verification takes constant time in the
// signature.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/protocol"
)

const prefix = "eg1."

// Errors a token can fail with. Their text is safe to send to the client.
var (
	ErrMalformed = errors.New("malformed token")
	ErrSignature = errors.New("token signature does not match (minted with another secret?)")
	ErrExpired   = errors.New("token has expired; get a fresh one")
	ErrUnknown   = errors.New("unknown token")
	ErrTooLong   = errors.New("token is valid for longer than this gateway allows (auth.max_token_ttl); mint one with a shorter --ttl")
)

// DefaultMaxTTL is the longest lifetime of a signed token unless the
// configuration says otherwise (auth.max_token_ttl).
const DefaultMaxTTL = 30 * 24 * time.Hour

// maxTTLSlack is how much later than now+MaxTTL a token may expire: the
// clock of the machine that minted it may be ahead.
const maxTTLSlack = 5 * time.Minute

// MinSecretBytes is the shortest HMAC secret accepted.
const MinSecretBytes = 16

// Mint returns a token for role valid until now+ttl.
func Mint(secret []byte, role string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < MinSecretBytes {
		return "", fmt.Errorf("the token secret must be at least %d bytes", MinSecretBytes)
	}
	if !protocol.ValidRole(role) {
		return "", fmt.Errorf("role %q: want viewer or operator", role)
	}
	if ttl <= 0 {
		return "", errors.New("ttl must be positive")
	}
	var nonce [9]byte
	rand.Read(nonce[:])
	body := prefix + role + "." + strconv.FormatInt(now.Add(ttl).Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(nonce[:])
	return body + "." + sign(secret, body), nil
}

func sign(secret []byte, body string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// IsSigned reports whether tok has the form of a signed token (as opposed
// to a static API key).
func IsSigned(tok string) bool { return strings.HasPrefix(tok, prefix) }

// Verify checks a signed token and returns its role and expiry.
func Verify(secret []byte, tok string, now time.Time) (role string, expires time.Time, err error) {
	if len(secret) == 0 || !IsSigned(tok) || len(tok) > 256 {
		return "", time.Time{}, ErrMalformed
	}
	i := strings.LastIndexByte(tok, '.')
	body, sig := tok[:i], tok[i+1:]
	parts := strings.Split(body, ".")
	if len(parts) != 4 {
		return "", time.Time{}, ErrMalformed
	}
	want := sign(secret, body)
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return "", time.Time{}, ErrSignature
	}
	role = parts[1]
	exp, perr := strconv.ParseInt(parts[2], 10, 64)
	if perr != nil || !protocol.ValidRole(role) {
		return "", time.Time{}, ErrMalformed
	}
	expires = time.Unix(exp, 0)
	if !now.Before(expires) {
		return "", time.Time{}, ErrExpired
	}
	return role, expires, nil
}

// Key is a static API key.
type Key struct {
	Name, Key, Role string
}

// Authenticator decides who a token belongs to.
type Authenticator struct {
	Secret []byte // for signed tokens; may be empty
	Keys   []Key
	// MaxTTL, when positive, refuses signed tokens that expire later than
	// that from now (ErrTooLong): minted with a longer --ttl than the
	// gateway allows.
	MaxTTL time.Duration
}

// Identity is who presented a token.
type Identity struct {
	Role string
	Name string // the key's name, or "token" for a signed token
}

// Check returns the identity of tok: a signed token, or one of the keys.
// Static keys are compared in constant time, all of them every time.
func (a *Authenticator) Check(tok string, now time.Time) (Identity, error) {
	if tok == "" {
		return Identity{}, ErrMalformed
	}
	if IsSigned(tok) && len(a.Secret) > 0 {
		role, exp, err := Verify(a.Secret, tok, now)
		if err != nil {
			return Identity{}, err
		}
		if a.MaxTTL > 0 && exp.After(now.Add(a.MaxTTL+maxTTLSlack)) {
			return Identity{}, ErrTooLong
		}
		return Identity{Role: role, Name: "token"}, nil
	}
	found := -1
	for i, k := range a.Keys {
		if subtle.ConstantTimeCompare([]byte(k.Key), []byte(tok)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, ErrUnknown
	}
	return Identity{Role: a.Keys[found].Role, Name: a.Keys[found].Name}, nil
}
