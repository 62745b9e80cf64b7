// Package tokencmd is what 'edgegate token' and 'edgectl token' share:
// the --role and --ttl flags, their limits, minting and the output (the
// token on a line of its own). Each command names its own secret source
// (a configuration file, a secret file) and reports errors in its own way.
package tokencmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/edgegate/edgegate/gateway/auth"
	"github.com/edgegate/edgegate/protocol"
)

// Flags are a token command's --role and --ttl.
type Flags struct {
	Role string
	TTL  time.Duration
	// MaxTTL is the longest --ttl accepted (the gateway's
	// auth.max_token_ttl); 0 means auth.DefaultMaxTTL.
	MaxTTL time.Duration
}

// Register defines --role and --ttl (default one hour) on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Role, "role", "", "viewer or operator")
	fs.DurationVar(&f.TTL, "ttl", time.Hour, "how long the token is valid")
}

// Check reports a flag value that cannot make a token, naming the flag.
func (f *Flags) Check() error {
	switch {
	case f.Role == "":
		return errors.New("--role is required: viewer (read only) or operator (may switch relays)")
	case !protocol.ValidRole(f.Role):
		return fmt.Errorf("--role %q: want viewer or operator", f.Role)
	case f.TTL <= 0:
		return errors.New("--ttl must be positive, e.g. --ttl 1h")
	case f.TTL > f.maxTTL():
		return fmt.Errorf("--ttl %v is longer than the gateway accepts (auth.max_token_ttl: %v); ask for less, or raise auth.max_token_ttl in the gateway's configuration", f.TTL, f.maxTTL())
	}
	return nil
}

func (f *Flags) maxTTL() time.Duration {
	if f.MaxTTL > 0 {
		return f.MaxTTL
	}
	return auth.DefaultMaxTTL
}

// Print mints a token for the flags with secret, valid from now, and
// writes it to w on a line of its own.
func (f *Flags) Print(w io.Writer, secret []byte, now time.Time) error {
	if err := f.Check(); err != nil {
		return err
	}
	tok, err := auth.Mint(secret, f.Role, f.TTL, now)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, tok)
	return err
}
