package gateway

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/edgegate/edgegate/gateway/config"
)

// certReloader serves the certificate in the configured files and loads it
// again when either file changes (a renewed certificate needs no restart).
// Files are looked at no more than once per checkEvery.
type certReloader struct {
	certFile, keyFile string

	mu        sync.Mutex
	cert      *tls.Certificate
	modTime   time.Time
	lastCheck time.Time
}

const certCheckEvery = 10 * time.Second

func newCertReloader(c *config.TLS) (*certReloader, error) {
	r := &certReloader{certFile: c.Cert, keyFile: c.Key}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("gateway.tls: load certificate %s and key %s: %w (both must be PEM files; the key must match the certificate)", r.certFile, r.keyFile, err)
	}
	r.cert, r.modTime = &cert, r.newestModTime()
	return nil
}

func (r *certReloader) newestModTime() time.Time {
	var t time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

// getCertificate is tls.Config.GetCertificate. A failed reload keeps the
// certificate that works.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.lastCheck) >= certCheckEvery {
		r.lastCheck = now
		if r.newestModTime().After(r.modTime) {
			old := r.cert
			if err := r.load(); err != nil {
				r.cert = old
			}
		}
	}
	return r.cert, nil
}

func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate, NextProtos: []string{"http/1.1"}}
}
