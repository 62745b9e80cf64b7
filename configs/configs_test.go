package configs_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/configs"
	"github.com/edgegate/edgegate/gateway/config"
)

// TestExamplesLoad: every *.yaml in configs/ passes the loader, which is
// the check `edgegate check-config` makes, and the examples for real
// hardware are there.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"sim.yaml": false, "relay-hat-4ch.yaml": false, "bme280.yaml": false, "usb-relay.yaml": false, "modbus.yaml": false, "probes.yaml": false}
	for _, f := range files {
		want[f] = true
		t.Run(f, func(t *testing.T) {
			cfg, err := loadInstalled(t, f)
			if err != nil {
				t.Fatalf("edgegate check-config %s would fail once installed:\n%v", f, err)
			}
			// An example reachable from the network has auth on (the
			// gateway refuses the other case without --insecure).
			host, _, err := net.SplitHostPort(cfg.Gateway.Listen)
			if err != nil {
				t.Fatal(err)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) && !cfg.Auth.Enabled {
				t.Errorf("listens on %s with auth disabled", cfg.Gateway.Listen)
			}
		})
	}
	for f, found := range want {
		if !found {
			t.Errorf("configs/%s is missing", f)
		}
	}
}

// placeholder is an API key an example ships instead of a usable one, and
// keysFile an auth.keys_file line.
var (
	placeholder = regexp.MustCompile(`CHANGE-ME-[A-Za-z0-9_-]*`)
	keysFile    = regexp.MustCompile(`(?m)^(\s*keys_file:\s*)(\S+)$`)
)

// randomKey is a key as scripts/install.sh and the package make them.
func randomKey() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadInstalled checks an example as scripts/install.sh installs it: each
// placeholder key replaced by a random one. As shipped, an example with
// placeholders is refused, naming each of them.
func loadInstalled(t *testing.T, f string) (*config.Config, error) {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// A keys_file is made as the package makes it: two fresh keys.
	if m := keysFile.FindSubmatch(data); m != nil {
		keys := filepath.Join(t.TempDir(), "api-keys")
		text := fmt.Sprintf("operator operator %s\nviewer viewer %s\n", randomKey(), randomKey())
		if err := os.WriteFile(keys, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		data = keysFile.ReplaceAll(data, []byte("${1}"+keys))
		path := filepath.Join(t.TempDir(), filepath.Base(f))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err == nil && len(cfg.Auth.Keys) != 2 {
			t.Errorf("%s: %d keys from its keys_file, want 2", f, len(cfg.Auth.Keys))
		}
		return cfg, err
	}
	n := len(placeholder.FindAll(data, -1))
	if n == 0 {
		return config.Load(f)
	}
	if _, err := config.Load(f); err == nil || strings.Count(err.Error(), "still the example's placeholder") != n {
		t.Errorf("%s as shipped, with %d placeholder keys: %v", f, n, err)
	}
	installed := placeholder.ReplaceAllFunc(data, func([]byte) []byte { return []byte(randomKey()) })
	return config.Parse(f, installed)
}

// TestSecretFileNotNeededForCheck: a config naming an auth.secret_file
// that does not exist here passes the check; the file is read at start.
func TestSecretFileNotNeededForCheck(t *testing.T) {
	cfg, err := loadInstalled(t, "relay-hat-4ch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Auth.Enabled || cfg.Auth.SecretFile == "" || len(cfg.Auth.Keys) == 0 {
		t.Fatalf("relay-hat-4ch.yaml should enable auth with a secret_file and keys: %+v", cfg.Auth)
	}
	missing := filepath.Join(t.TempDir(), "no-such-secret.key")
	data, err := os.ReadFile("relay-hat-4ch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.ReplaceAll(string(data), cfg.Auth.SecretFile, missing))
	n := 0
	data = placeholder.ReplaceAllFunc(data, func([]byte) []byte { n++; return []byte(fmt.Sprintf("installed-key-%020d", n)) })
	cfg, err = config.Parse("relay-hat-4ch.yaml", data)
	if err != nil || cfg.Auth.SecretFile != missing {
		t.Fatalf("check with a missing secret_file: %v", err)
	}
}

// TestEmbeddedSim: the embedded default is configs/sim.yaml as it is on disk.
func TestEmbeddedSim(t *testing.T) {
	data, err := os.ReadFile("sim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(configs.Sim) {
		t.Fatal("configs.Sim differs from sim.yaml")
	}
}
