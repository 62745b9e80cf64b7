package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/edgegate/edgegate/gateway/auth"
	"github.com/edgegate/edgegate/protocol"
)

// defaultSecretFile is where scripts/install.sh keeps the gateway's token
// secret on a Pi.
const defaultSecretFile = "/etc/edgegate/secret.key"

// cmdToken mints a signed token locally, exactly as 'edgegate token' does:
// the secret is the content of the gateway's auth.secret_file, surrounding
// white space removed.
func cmdToken(args []string, stdout io.Writer) error {
	fs := newFlagSet("edgectl token")
	role := fs.String("role", "", "viewer or operator")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	file := fs.String("secret-file", defaultSecretFile, "the file holding the gateway's auth.secret_file secret")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usagef("token: %v", err)
	}
	if fs.NArg() > 0 {
		return usagef("token: unexpected argument %q; usage: edgectl token --role viewer|operator [--ttl 1h] [--secret-file FILE]", fs.Arg(0))
	}
	switch {
	case *role == "":
		return usagef("token: --role is required: viewer (read only) or operator (may switch relays)")
	case !protocol.ValidRole(*role):
		return usagef("token: --role %q: want viewer or operator", *role)
	case *ttl <= 0:
		return usagef("token: --ttl must be positive, e.g. --ttl 1h")
	}
	secret, err := auth.ReadSecretFile(*file)
	var short *auth.ShortSecretError
	if errors.As(err, &short) {
		return usagef("token: %v", err)
	}
	if err != nil {
		return usagef("token: read the secret: %v (pass --secret-file with the file named by auth.secret_file in the gateway's config; it is readable by root and the edgegate group)", err)
	}
	tok, err := auth.Mint(secret, *role, *ttl, time.Now())
	if err != nil {
		return usagef("token: %v", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
