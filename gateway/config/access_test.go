package config

import (
	"reflect"
	"testing"
	"time"
)

// The keys of the Host check, the public URL, token lifetimes and the
// public endpoints (issue 19).
func TestAccessKeys(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
gateway:
  allowed_hosts: [raspberrypi.local, 192.168.1.20, "[fe80::1]", Pi.Example.]
  public_url: https://pi.example/edge/
auth:
  max_token_ttl: 24h
  public_health: false
  public_metrics: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"raspberrypi.local", "192.168.1.20", "[fe80::1]", "Pi.Example."}; !reflect.DeepEqual(c.Gateway.AllowedHosts, want) {
		t.Fatalf("allowed_hosts %q", c.Gateway.AllowedHosts)
	}
	if c.Gateway.PublicURL != "https://pi.example/edge/" || c.Auth.MaxTokenTTL != Duration(24*time.Hour) || c.Auth.PublicHealth || !c.Auth.PublicMetrics {
		t.Fatalf("%+v %+v", c.Gateway, c.Auth)
	}
	d := Default()
	if d.Auth.MaxTokenTTL != Duration(30*24*time.Hour) || !d.Auth.PublicHealth || d.Auth.PublicMetrics || d.Gateway.AllowedHosts != nil || d.Gateway.PublicURL != "" {
		t.Fatalf("defaults: %+v %+v", d.Gateway, d.Auth)
	}
}

func TestAccessKeyRefusals(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"host with a port", "gateway:\n  allowed_hosts: [pi.lan:8080]\n",
			`t.yaml:2: gateway.allowed_hosts[0]: want a host name or IP address as browsers write it in their address bar, without scheme, port or wildcard, such as "raspberrypi.local" or "192.168.1.20", got "pi.lan:8080"`},
		{"host with a scheme", "gateway:\n  allowed_hosts:\n    - pi.lan\n    - http://pi.lan\n",
			`t.yaml:4: gateway.allowed_hosts[1]: want a host name or IP address as browsers write it in their address bar, without scheme, port or wildcard, such as "raspberrypi.local" or "192.168.1.20", got "http://pi.lan"`},
		{"wildcard host", "gateway:\n  allowed_hosts: [\"*\"]\n",
			`t.yaml:2: gateway.allowed_hosts[0]: want a host name or IP address as browsers write it in their address bar, without scheme, port or wildcard, such as "raspberrypi.local" or "192.168.1.20", got "*"`},
		{"public url without scheme", "gateway:\n  public_url: pi.example\n",
			`t.yaml:2: gateway.public_url: want the URL browsers open the gateway at, such as "https://pi.example" (http:// or https://, a host, optionally a port and a path; no user, query or fragment), got "pi.example"`},
		{"public url with a query", "gateway:\n  public_url: https://pi.example/?x=1\n",
			`t.yaml:2: gateway.public_url: want the URL browsers open the gateway at, such as "https://pi.example" (http:// or https://, a host, optionally a port and a path; no user, query or fragment), got "https://pi.example/?x=1"`},
		{"public url with a user", "gateway:\n  public_url: https://me@pi.example\n",
			`t.yaml:2: gateway.public_url: want the URL browsers open the gateway at, such as "https://pi.example" (http:// or https://, a host, optionally a port and a path; no user, query or fragment), got "https://me@pi.example"`},
		{"token ttl too short", "auth:\n  enabled: true\n  secret: 0123456789abcdef-secret\n  max_token_ttl: 30s\n",
			`t.yaml:4: auth.max_token_ttl: must be at least 1m (the dashboard's socket tokens live that long), got 30s (default 720h)`},
		{"public health not a bool", "auth:\n  public_health: yes\n",
			`t.yaml:2: auth.public_health: want true or false, got "yes"`},
	} {
		_, err := Parse("t.yaml", []byte(c.in))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.name, err, c.want)
		}
	}
}
