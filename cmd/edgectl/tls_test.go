package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWSS: edgectl talks to a gateway with TLS when it trusts the
// certificate (--ca, or --insecure-skip-verify), and refuses with exit 3
// and what to do when it does not.
func TestWSS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgectl test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cfg := filepath.Join(dir, "tls.yaml")
	os.WriteFile(cfg, []byte("gateway:\n  tls: {cert: "+certFile+", key: "+keyFile+"}\nrelays:\n  - {name: pump, driver: gpio, pin: GPIO17}\n"), 0o600)

	out := &syncBuffer{}
	cmd := exec.Command(gatewayBin, "--sim", "--config", cfg, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var addr string
	for deadline := time.Now().Add(15 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := urlRe.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("edgegate did not start:\n%s", out.String())
		}
	}
	env := map[string]string{"EDGEGATE_URL": "wss://" + addr}
	if r := edgectl(t, env, "--ca", certFile, "get", "pump"); r.code != 0 || !strings.Contains(r.stdout, "pump") {
		t.Fatalf("--ca: %v", r)
	}
	if r := edgectl(t, env, "--insecure-skip-verify", "list"); r.code != 0 {
		t.Fatalf("--insecure-skip-verify: %v", r)
	}
	r := edgectl(t, env, "list")
	if r.code != 3 || !strings.Contains(r.stderr, "pass --ca") {
		t.Fatalf("untrusted certificate: %v", r)
	}
	r = edgectl(t, map[string]string{"EDGEGATE_URL": "ws://" + addr}, "list")
	if r.code != 3 || !strings.Contains(r.stderr, "use wss://") {
		t.Fatalf("ws:// to a TLS port: %v", r)
	}
}
