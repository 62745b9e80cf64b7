// Package mosquittotest runs a real Mosquitto broker for tests, on a free
// loopback port with a generated configuration: anonymous, with a password
// file (made with mosquitto_passwd), or with TLS (certificates made here
// with crypto/x509). It also gives a paho client that watches from outside.
package mosquittotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Options choose the broker's security.
type Options struct {
	// User and Password: with User set, anonymous clients are refused and
	// a password file holds this one user.
	User, Password string
	// TLS serves mqtts:// with a certificate of a CA made for the test
	// (Broker.CAFile).
	TLS bool
	// ClientCerts (with TLS) makes the broker require a client
	// certificate of its CA (Broker.ClientCert and ClientKey).
	ClientCerts bool
	// Persist keeps sessions and queued messages across Stop and Restart
	// (a durable Watcher's, say).
	Persist bool
}

// Broker is one running Mosquitto.
type Broker struct {
	t      testing.TB
	dir    string
	Port   int
	URL    string // mqtt://127.0.0.1:port or mqtts://localhost:port
	CAFile string // with TLS
	// ClientCert and ClientKey: a client certificate of the CA (PEM files).
	ClientCert, ClientKey string
	conf                  string
	mu                    sync.Mutex
	cmd                   *exec.Cmd
	exited                chan struct{}
}

// Binary finds mosquitto; when it is missing the test is failed under CI
// (scripts/test.sh installs it) and skipped elsewhere.
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("mosquitto is not installed: apt-get install -y mosquitto (scripts/test.sh installs it)")
	}
	t.Skip("mosquitto is not installed: apt-get install -y mosquitto")
	return ""
}

// Start runs a broker until the test ends.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	Binary(t)
	b := &Broker{t: t, dir: t.TempDir()}
	b.Port = FreePort(t)
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\nlog_dest stderr\nlog_type error\nlog_type warning\nmax_queued_messages 100000\n", b.Port)
	if o.Persist {
		fmt.Fprintf(&conf, "persistence true\npersistence_location %s/\nautosave_interval 1\n", b.dir)
	}
	if os.Geteuid() == 0 {
		// Run as root, mosquitto would switch to its own user, who cannot
		// read the test's files.
		conf.WriteString("user root\n")
	}
	if !o.Persist {
		conf.WriteString("persistence false\n")
	}
	if o.User != "" {
		pw := filepath.Join(b.dir, "passwd")
		cmd := exec.Command("mosquitto_passwd", "-c", "-b", pw, o.User, o.Password)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
		os.Chmod(pw, 0o600)
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	b.URL = fmt.Sprintf("mqtt://127.0.0.1:%d", b.Port)
	if o.TLS {
		ca, cert, key := makeCerts(t, b.dir)
		b.CAFile = ca
		b.ClientCert, b.ClientKey = filepath.Join(b.dir, "client.pem"), filepath.Join(b.dir, "client.key")
		fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\n", ca, cert, key)
		if o.ClientCerts {
			conf.WriteString("require_certificate true\n")
		}
		b.URL = fmt.Sprintf("mqtts://localhost:%d", b.Port)
	}
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	t.Cleanup(func() {
		b.Stop()
		if log, _ := os.ReadFile(filepath.Join(b.dir, "mosquitto.log")); t.Failed() && len(log) > 0 {
			t.Logf("mosquitto log:\n%s", log)
		}
	})
	return b
}

// Restart starts the broker (again) on the same port.
func (b *Broker) Restart() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		b.t.Fatal("mosquittotest: Restart of a running broker")
	}
	var lastErr error
	for try := 0; try < 50; try++ {
		cmd := exec.Command(Binary(b.t), "-c", b.conf)
		logf, err := os.OpenFile(filepath.Join(b.dir, "mosquitto.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			b.t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			b.t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); logf.Close(); close(exited) }()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				lastErr = fmt.Errorf("mosquitto exited: %v", cmd.ProcessState)
			default:
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port), time.Second)
				if err == nil {
					c.Close()
					b.cmd, b.exited = cmd, exited
					return
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break
		}
		if lastErr == nil {
			cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("mosquitto did not listen on %d", b.Port)
		}
		time.Sleep(100 * time.Millisecond) // the port may still be in TIME_WAIT use
	}
	b.t.Fatalf("mosquittotest: %v", lastErr)
}

// Stop ends the broker (SIGTERM, then SIGKILL); Restart brings it back.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
	}
	b.cmd = nil
}

// FreePort is a loopback port nothing listens on, for now.
func FreePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// makeCerts writes a CA and a server certificate for localhost and
// 127.0.0.1 signed by it.
func makeCerts(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgegate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(caFile, "CERTIFICATE", caDER)
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", keyDER)
	// A client certificate, for mutual TLS.
	ckey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "edgegate test client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cder, err := x509.CreateCertificate(rand.Reader, ctmpl, ca, &ckey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ckeyDER, _ := x509.MarshalECPrivateKey(ckey)
	write(filepath.Join(dir, "client.pem"), "CERTIFICATE", cder)
	write(filepath.Join(dir, "client.key"), "EC PRIVATE KEY", ckeyDER)
	return caFile, certFile, keyFile
}

// Message is one message a Watcher got.
type Message struct {
	Topic    string
	Payload  string
	Retained bool
}

// Watcher is a paho client subscribed from outside the gateway.
type Watcher struct {
	C    paho.Client
	mu   sync.Mutex
	msgs []Message
	cond chan struct{}
}

// Watch connects a client to b and subscribes to each filter.
func (b *Broker) Watch(t testing.TB, user, password string, filters ...string) *Watcher {
	t.Helper()
	return b.watch(t, user, password, fmt.Sprintf("watcher-%d", time.Now().UnixNano()), true, filters)
}

// WatchDurable is Watch (anonymous) with a persistent session under
// clientID: with Options.Persist, what is published while it is cut off
// (the broker restarting) reaches it once it is back.
func (b *Broker) WatchDurable(t testing.TB, clientID string, filters ...string) *Watcher {
	t.Helper()
	return b.watch(t, "", "", clientID, false, filters)
}

func (b *Broker) watch(t testing.TB, user, password, clientID string, clean bool, filters []string) *Watcher {
	t.Helper()
	w := &Watcher{cond: make(chan struct{}, 1)}
	o := paho.NewClientOptions().AddBroker(strings.Replace(strings.Replace(b.URL, "mqtts://", "ssl://", 1), "mqtt://", "tcp://", 1)).
		SetClientID(clientID).SetCleanSession(clean).SetResumeSubs(true).SetAutoReconnect(true).
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond)
	if user != "" {
		o.SetUsername(user).SetPassword(password)
	}
	if b.CAFile != "" {
		pool := x509.NewCertPool()
		pemData, _ := os.ReadFile(b.CAFile)
		pool.AppendCertsFromPEM(pemData)
		tc := &tls.Config{RootCAs: pool}
		if cert, err := tls.LoadX509KeyPair(b.ClientCert, b.ClientKey); err == nil {
			tc.Certificates = []tls.Certificate{cert}
		}
		o.SetTLSConfig(tc)
	}
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = 1
	}
	o.SetOnConnectHandler(func(c paho.Client) {
		if len(subs) > 0 {
			c.SubscribeMultiple(subs, w.handle)
		}
	})
	w.C = paho.NewClient(o)
	if tok := w.C.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	t.Cleanup(func() { w.C.Disconnect(100) })
	time.Sleep(100 * time.Millisecond) // the subscription is made on connect
	return w
}

func (w *Watcher) handle(_ paho.Client, m paho.Message) {
	w.mu.Lock()
	w.msgs = append(w.msgs, Message{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained()})
	w.mu.Unlock()
	select {
	case w.cond <- struct{}{}:
	default:
	}
}

// Messages is a copy of every message so far.
func (w *Watcher) Messages() []Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Message(nil), w.msgs...)
}

// Reset forgets the messages so far.
func (w *Watcher) Reset() {
	w.mu.Lock()
	w.msgs = nil
	w.mu.Unlock()
}

// WaitFor waits until ok holds for a message and returns that message.
func (w *Watcher) WaitFor(t testing.TB, d time.Duration, what string, ok func(Message) bool) Message {
	t.Helper()
	deadline := time.After(d)
	seen := 0
	for {
		msgs := w.Messages()
		for _, m := range msgs[seen:] {
			if ok(m) {
				return m
			}
		}
		seen = len(msgs)
		select {
		case <-w.cond:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s within %v; got %d messages", what, d, len(msgs))
		}
	}
}

// Topic is a WaitFor condition: a message on topic with payload (any
// payload when "*").
func Topic(topic, payload string) func(Message) bool {
	return func(m Message) bool { return m.Topic == topic && (payload == "*" || m.Payload == payload) }
}

// Publish publishes from the watcher and waits for it.
func (w *Watcher) Publish(t testing.TB, topic string, retained bool, payload string) {
	t.Helper()
	if tok := w.C.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// Seqs is every seq seen in {"samples":[…]} messages on …/samples, with how many times
// each came.
func (w *Watcher) Seqs(t testing.TB) map[uint64]int {
	t.Helper()
	seen := map[uint64]int{}
	for _, m := range w.Messages() {
		if !strings.HasSuffix(m.Topic, "/samples") {
			continue
		}
		var batch struct {
			Samples []struct{ Seq uint64 }
		}
		if err := json.Unmarshal([]byte(m.Payload), &batch); err != nil {
			t.Fatalf("samples message %q: %v", m.Payload, err)
		}
		for _, s := range batch.Samples {
			seen[s.Seq]++
		}
	}
	return seen
}

// WaitNoGap waits until every seq from first to last has arrived on the
// samples topic the watcher subscribed to.
func (w *Watcher) WaitNoGap(t testing.TB, first, last uint64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		seen := w.Seqs(t)
		var missing []uint64
		for s := first; s <= last; s++ {
			if seen[s] == 0 {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of seq %d..%d never arrived; the first: %v", len(missing), first, last, missing[:min(10, len(missing))])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
