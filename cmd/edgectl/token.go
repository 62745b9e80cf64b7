package main

import (
	"errors"
	"flag"
	"io"
	"time"

	"github.com/edgegate/edgegate/cmd/internal/tokencmd"
	"github.com/edgegate/edgegate/gateway/auth"
)

// defaultSecretFile is where scripts/install.sh keeps the gateway's token
// secret on a Pi.
const defaultSecretFile = "/etc/edgegate/secret.key"

// cmdToken mints a signed token locally, exactly as 'edgegate token' does:
// the secret is the content of the gateway's auth.secret_file, surrounding
// white space removed.
func cmdToken(args []string, stdout io.Writer) error {
	fs := newFlagSet("edgectl token")
	var tf tokencmd.Flags
	tf.Register(fs)
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
	if err := tf.Check(); err != nil {
		return usagef("token: %v", err)
	}
	secret, err := auth.ReadSecretFile(*file)
	var short *auth.ShortSecretError
	if errors.As(err, &short) {
		return usagef("token: %v", err)
	}
	if err != nil {
		return usagef("token: read the secret: %v (pass --secret-file with the file named by auth.secret_file in the gateway's config; it is readable by root and the edgegate group)", err)
	}
	if err := tf.Print(stdout, secret, time.Now()); err != nil {
		return usagef("token: %v", err)
	}
	return nil
}
