package configs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/gateway/config"
)

// buildEdgegate builds the gateway for the machine running the test, so
// that install.sh can run its check-config.
func buildEdgegate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "edgegate-linux-test")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/edgegate/edgegate/cmd/edgegate").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runInstall(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../scripts/install.sh"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestInstallScript runs scripts/install.sh into a temp root twice and
// checks what it writes: the binary, a config made from the example with
// fresh keys, a secret, the data dir and a hardened unit; the second run
// overwrites neither the config nor the secret.
func TestInstallScript(t *testing.T) {
	bin := buildEdgegate(t)
	root := t.TempDir()
	out := runInstall(t, "--prefix", root, "--no-systemd", bin)
	if !strings.Contains(out, "edgegate.yaml: ok") {
		t.Fatalf("install.sh did not run check-config:\n%s", out)
	}

	installed, err := os.ReadFile(filepath.Join(root, "usr/local/bin/edgegate"))
	if err != nil {
		t.Fatal(err)
	}
	if orig, _ := os.ReadFile(bin); !bytes.Equal(installed, orig) {
		t.Fatal("/usr/local/bin/edgegate is not the given binary")
	}
	if fi, _ := os.Stat(filepath.Join(root, "usr/local/bin/edgegate")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("binary mode %v", fi.Mode())
	}
	if fi, err := os.Stat(filepath.Join(root, "var/lib/edgegate")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("data dir: %v %v", fi, err)
	}

	// The config: the example with its placeholder keys replaced, valid.
	cfgPath := filepath.Join(root, "etc/edgegate/edgegate.yaml")
	cfgData, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(cfgPath); fi.Mode().Perm() != 0o640 {
		t.Fatalf("config mode %v, want 0640 (it holds API keys)", fi.Mode())
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("installed config does not load: %v", err)
	}
	if len(cfg.Auth.Keys) < 2 {
		t.Fatalf("keys: %+v", cfg.Auth.Keys)
	}
	seen := map[string]bool{}
	for _, k := range cfg.Auth.Keys {
		if strings.Contains(k.Key, "CHANGE-ME") || !regexp.MustCompile(`^[0-9a-f]{48}$`).MatchString(k.Key) || seen[k.Key] {
			t.Fatalf("key %q of %s is not a fresh random key", k.Key, k.Name)
		}
		seen[k.Key] = true
	}
	example, _ := os.ReadFile("relay-hat-4ch.yaml")
	if strings.Count(string(cfgData), "\n") != strings.Count(string(example), "\n") {
		t.Fatal("the installed config is not the example with keys replaced")
	}

	// The secret: at least 16 bytes, private.
	secretPath := filepath.Join(root, "etc/edgegate/secret.key")
	secret, err := os.ReadFile(secretPath)
	if err != nil || len(bytes.TrimSpace(secret)) < 16 {
		t.Fatalf("secret: %q %v", secret, err)
	}
	if fi, _ := os.Stat(secretPath); fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("secret readable by others: %v", fi.Mode())
	}

	// The unit.
	unitPath := filepath.Join(root, "etc/systemd/system/edgegate.service")
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"User=edgegate",
		"SupplementaryGroups=gpio i2c dialout",
		"ExecStart=/usr/local/bin/edgegate --config /etc/edgegate/edgegate.yaml --data-dir /var/lib/edgegate",
		"ExecStartPre=/usr/local/bin/edgegate check-config /etc/edgegate/edgegate.yaml",
		"ProtectSystem=strict",
		"ReadWritePaths=/var/lib/edgegate",
		"NoNewPrivileges=yes",
		"PrivateTmp=yes",
		"ProtectHome=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
		"CapabilityBoundingSet=",
		"DevicePolicy=closed",
		"DeviceAllow=char-gpiochip rw",
		"DeviceAllow=/dev/gpiomem rw",
		"DeviceAllow=char-i2c rw",
		"DeviceAllow=char-ttyACM rw",
		"DeviceAllow=char-ttyUSB rw",
		"Restart=on-failure",
		"KillSignal=SIGTERM",
		"TimeoutStopSec=20s",
		"MemoryHigh=192M",
		"MemoryMax=256M",
		"WantedBy=multi-user.target",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).Match(unit) {
			t.Errorf("unit has no line %q", line)
		}
	}
	if t.Failed() {
		t.Fatalf("unit:\n%s", unit)
	}
	verifyUnit(t, root, unit)

	// Second run: the operator edited the config; nothing is overwritten.
	edited := append(cfgData, []byte("# edited by the operator\n")...)
	if err := os.WriteFile(cfgPath, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	out = runInstall(t, "--prefix", root, "--no-systemd", bin)
	for _, want := range []string{"keeping the existing /etc/edgegate/edgegate.yaml", "keeping the existing /etc/edgegate/secret.key", "already this binary", "is up to date"} {
		if !strings.Contains(out, want) {
			t.Errorf("second run does not say %q:\n%s", want, out)
		}
	}
	if got, _ := os.ReadFile(cfgPath); !bytes.Equal(got, edited) {
		t.Fatal("the second run changed the existing config")
	}
	if got, _ := os.ReadFile(secretPath); !bytes.Equal(got, secret) {
		t.Fatal("the second run changed the secret")
	}
}

// verifyUnit lets systemd-analyze check the unit, when it is installed
// (with the binary's path moved into the test root, which it needs to find).
func verifyUnit(t *testing.T, root string, unit []byte) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: unit syntax not verified")
		return
	}
	dir := t.TempDir()
	moved := strings.ReplaceAll(string(unit), "/usr/local/bin/edgegate", filepath.Join(root, "usr/local/bin/edgegate"))
	path := filepath.Join(dir, "edgegate.service")
	if err := os.WriteFile(path, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestInstallDryRun: --dry-run prints the plan and writes nothing, and a
// config that fails the check stops the install before systemd.
func TestInstallDryRun(t *testing.T) {
	bin := buildEdgegate(t)
	root := filepath.Join(t.TempDir(), "root")
	out := runInstall(t, "--dry-run", "--prefix", root, bin)
	for _, want := range []string{"would run: install -D -m 0755", "would create /etc/edgegate/edgegate.yaml", "would write /etc/systemd/system/edgegate.service", "ProtectSystem=strict", "check-config"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run does not say %q", want)
		}
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("--dry-run created %s", root)
	}
	if t.Failed() {
		t.Fatalf("output:\n%s", out)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("relays:\n  - {name: pump, driver: gpio}\n"), 0o644)
	root = t.TempDir()
	cmd := exec.Command("bash", "../scripts/install.sh", "--prefix", root, "--example", bad, bin)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "relays[0].pin") || !strings.Contains(string(b), "was not enabled") {
		t.Fatalf("a bad config should stop the install with the problem: %v\n%s", err, b)
	}
}
