package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// password is mqtt.password, or the content of password_file read at each
// connect (so that a changed file is picked up). It is never logged.
func (b *Bridge) password() (string, error) {
	if b.cfg.PasswordFile == "" {
		return b.cfg.Password, nil
	}
	p, err := os.ReadFile(b.cfg.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("mqtt.password_file: %w", err)
	}
	return strings.TrimRight(string(p), "\r\n"), nil
}

// tlsConfig is the TLS configuration of an mqtts:// broker: the system
// roots or ca_file, and the client certificate if one is configured.
func (b *Bridge) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if b.cfg.CAFile != "" {
		pem, err := os.ReadFile(b.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.ca_file %s holds no PEM certificate", b.cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if b.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(b.cfg.CertFile, b.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// connect dials the broker and sends CONNECT (clean session, the Last
// Will on the status topic). lost gets the error that ends the connection.
func (b *Bridge) connect(ctx context.Context) (paho.Client, *lostSignal, error) {
	pw, err := b.password()
	if err != nil {
		return nil, nil, err
	}
	pu, err := url.Parse(b.cfg.URL)
	if err != nil {
		return nil, nil, err
	}
	host, port := pu.Hostname(), pu.Port()
	var tc *tls.Config
	if pu.Scheme == "mqtts" {
		if port == "" {
			port = "8883"
		}
		if tc, err = b.tlsConfig(host); err != nil {
			return nil, nil, err
		}
	} else if port == "" {
		port = "1883"
	}
	addr := net.JoinHostPort(host, port)
	qos := byte(b.cfg.QoS)
	lost := &lostSignal{c: make(chan struct{})}
	o := paho.NewClientOptions().
		AddBroker("tcp://"+addr). // dialled by the function below
		SetClientID(b.clientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(time.Duration(b.cfg.Keepalive)).
		SetPingTimeout(10*time.Second).
		SetConnectTimeout(dialTimeout).
		SetWriteTimeout(5*time.Second).
		SetOrderMatters(true).
		SetWill(b.base+"/status", "offline", qos, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost.set(err) }).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			nc, err := d.DialContext(ctx, "tcp", addr)
			if err != nil || tc == nil {
				return nc, err
			}
			tlc := tls.Client(nc, tc)
			hctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			if err := tlc.HandshakeContext(hctx); err != nil {
				nc.Close()
				return nil, fmt.Errorf("TLS: %w", err)
			}
			return tlc, nil
		})
	if b.cfg.Username != "" {
		o.SetUsername(b.cfg.Username)
	}
	if pw != "" {
		o.SetPassword(pw)
	}
	c := paho.NewClient(o)
	t := c.Connect()
	select {
	case <-t.Done():
	case <-ctx.Done():
		<-t.Done() // the dial is cancelled; the handshake is bounded by its timeout
		if c.IsConnected() {
			c.Disconnect(0)
		}
		return nil, nil, ctx.Err()
	}
	if err := t.Error(); err != nil {
		return nil, nil, connectError(b.shown, err)
	}
	return c, lost, nil
}

// connectError says what a refused CONNECT means.
func connectError(broker string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "bad user name or password"), strings.Contains(msg, "not Authorized"):
		// Mosquitto 2 answers a wrong password with "not authorised".
		return fmt.Errorf("the broker %s refused the credentials (%s); check mqtt.username and mqtt.password or password_file, and the broker's ACL", broker, msg)
	case strings.Contains(msg, "identifier rejected"):
		return fmt.Errorf("the broker %s rejected the client id; set mqtt.client_id", broker)
	}
	return fmt.Errorf("connect %s: %w", broker, err)
}

// lostSignal is closed when the connection is lost; err is why.
type lostSignal struct {
	c    chan struct{}
	once sync.Once
	err  error
}

func (l *lostSignal) set(err error) {
	l.once.Do(func() {
		l.err = err
		close(l.c)
	})
}
