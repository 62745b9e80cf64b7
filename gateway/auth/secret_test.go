package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	short := filepath.Join(dir, "short.key")
	os.WriteFile(good, []byte("  0123456789abcdef-secret\n"), 0o600)
	os.WriteFile(short, []byte("tooshort\n"), 0o600)

	if b, err := LoadSecret("inline-secret", good); err != nil || string(b) != "inline-secret" {
		t.Fatalf("inline: %q, %v", b, err)
	}
	if b, err := LoadSecret("", good); err != nil || string(b) != "0123456789abcdef-secret" {
		t.Fatalf("file: %q, %v", b, err)
	}
	if b, err := LoadSecret("", ""); err != nil || b != nil {
		t.Fatalf("none: %q, %v", b, err)
	}
	_, err := LoadSecret("", short)
	want := "auth.secret_file " + short + ": the secret must be at least 16 bytes (e.g. head -c 32 /dev/urandom | base64 > " + short + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("short: %v, want %s", err, want)
	}
	_, err = LoadSecret("", filepath.Join(dir, "missing.key"))
	if err == nil || !strings.HasPrefix(err.Error(), "auth.secret_file: ") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte(" 12345 \n"), 0o600)
	_, err := ReadSecretFile(short)
	var se *ShortSecretError
	if !errors.As(err, &se) || se.File != short || se.Len != 5 {
		t.Fatalf("short: %v", err)
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
