package auth

import (
	"bytes"
	"fmt"
	"os"
)

// ShortSecretError is a secret file that holds fewer than MinSecretBytes
// (surrounding white space removed).
type ShortSecretError struct {
	File string
	Len  int
}

func (e *ShortSecretError) Error() string {
	return fmt.Sprintf("%s holds %d bytes; a secret has at least %d (make one with: head -c 32 /dev/urandom | base64 > %s)", e.File, e.Len, MinSecretBytes, e.File)
}

// ReadSecretFile reads the HMAC secret kept in file, surrounding white
// space removed. A file that cannot be read gives the error of os.ReadFile,
// one that holds too short a secret a *ShortSecretError.
func ReadSecretFile(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecretBytes {
		return nil, &ShortSecretError{File: file, Len: len(b)}
	}
	return b, nil
}

// LoadSecret returns the HMAC secret of the gateway's auth settings: the
// inline secret, else the content of secretFile; nil when neither is set.
// Its errors name the setting to fix (auth.secret_file).
func LoadSecret(secret, secretFile string) ([]byte, error) {
	switch {
	case secret != "":
		return []byte(secret), nil
	case secretFile != "":
		b, err := ReadSecretFile(secretFile)
		if _, short := err.(*ShortSecretError); short {
			return nil, fmt.Errorf("auth.secret_file %s: the secret must be at least %d bytes (e.g. head -c 32 /dev/urandom | base64 > %s)", secretFile, MinSecretBytes, secretFile)
		}
		if err != nil {
			return nil, fmt.Errorf("auth.secret_file: %w", err)
		}
		return b, nil
	}
	return nil, nil
}

// WorldReadable reports whether every user of the machine may read file
// (its mode has the "others" read bit): then anyone with a shell on the
// board can mint operator tokens.
func WorldReadable(file string) bool {
	fi, err := os.Stat(file)
	return err == nil && fi.Mode().Perm()&0o004 != 0
}
