package configs_test

import (
	"net"
	"os"
	"path/filepath"
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
	want := map[string]bool{"sim.yaml": false, "relay-hat-4ch.yaml": false, "bme280.yaml": false, "usb-relay.yaml": false}
	for _, f := range files {
		want[f] = true
		t.Run(f, func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatalf("edgegate check-config %s would fail:\n%v", f, err)
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

// TestSecretFileNotNeededForCheck: a config naming an auth.secret_file
// that does not exist here passes the check; the file is read at start.
func TestSecretFileNotNeededForCheck(t *testing.T) {
	cfg, err := config.Load("relay-hat-4ch.yaml")
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
	cfg, err = config.Parse("relay-hat-4ch.yaml", []byte(strings.ReplaceAll(string(data), cfg.Auth.SecretFile, missing)))
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
