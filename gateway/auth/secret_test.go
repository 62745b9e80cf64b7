package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretFiles writes each content to a file of its own in a temporary
// directory and returns the paths by content.
func secretFiles(t *testing.T, contents ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for i, c := range contents {
		p := filepath.Join(t.TempDir(), "secret"+string(rune('a'+i))+".key")
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		paths[c] = p
	}
	return paths
}

func TestLoadSecret(t *testing.T) {
	files := secretFiles(t, "  0123456789abcdef-secret\n", "tooshort\n")
	good, short := files["  0123456789abcdef-secret\n"], files["tooshort\n"]

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
	_, err = LoadSecret("", filepath.Join(t.TempDir(), "missing.key"))
	if err == nil || !strings.HasPrefix(err.Error(), "auth.secret_file: ") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	short := secretFiles(t, " 12345 \n")[" 12345 \n"]
	_, err := ReadSecretFile(short)
	var se *ShortSecretError
	if !errors.As(err, &se) || se.File != short || se.Len != 5 {
		t.Fatalf("short: %v", err)
	}
	if want := short + " holds 5 bytes; a secret has at least 16 (make one with: head -c 32 /dev/urandom | base64 > " + short + ")"; err.Error() != want {
		t.Fatalf("short: %q, want %q", err, want)
	}
	if _, err := ReadSecretFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

func TestWorldReadable(t *testing.T) {
	p := secretFiles(t, "0123456789abcdef-secret")["0123456789abcdef-secret"]
	for mode, want := range map[os.FileMode]bool{0o600: false, 0o640: false, 0o644: true, 0o604: true} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if got := WorldReadable(p); got != want {
			t.Errorf("mode %v: WorldReadable = %v, want %v", mode, got, want)
		}
	}
	if WorldReadable(filepath.Join(t.TempDir(), "missing")) {
		t.Fatal("a missing file is not readable")
	}
}
