package config

import (
	"strings"
	"testing"
	"time"
)

func TestMQTTDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte("gateway: {id: g.1}\nmqtt:\n  url: mqtt://127.0.0.1:1883\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := c.MQTT
	if m == nil || m.BaseTopic != "edgegate" || m.QoS != 1 || !m.Discovery || m.DiscoveryPrefix != "homeassistant" ||
		!m.Commands || !m.Samples || m.SensorMaxHz != 1 || m.BufferMaxBytes != 64*MiB || m.Keepalive != Duration(30*time.Second) {
		t.Fatalf("defaults: %+v", m)
	}
	if c2, _ := Parse("t.yaml", []byte("gateway: {id: g}\n")); c2.MQTT != nil {
		t.Fatal("mqtt without a section")
	}
}

func TestMQTTErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"mqtt:\n  url: http://x:1883\n", "t.yaml:2: mqtt.url: want an mqtt:// or mqtts:// URL"},
		{"mqtt:\n  url: mqtt://x\n  qos: 2\n", "t.yaml:3: mqtt.qos: must be 0 or 1"},
		{"mqtt:\n  url: mqtt://x\n  password: a\n  password_file: f\n", "t.yaml:4: mqtt.password_file: set either password or password_file"},
		{"mqtt:\n  url: mqtt://x\n  colour: red\n", "t.yaml:3: mqtt.colour: unknown field"},
		{"mqtt:\n  url: mqtt://x\n  base_topic: a/+/b\n", "t.yaml:3: mqtt.base_topic: must not hold the MQTT wildcards"},
		{"mqtt:\n  url: mqtt://x\n  base_topic: a.b\n", "t.yaml:3: mqtt.base_topic: must not hold a ."},
		{"mqtt:\n  url: mqtt://x\n  discovery_prefix: /ha\n", "t.yaml:3: mqtt.discovery_prefix: must not start or end with /"},
		{"mqtt:\n  url: mqtt://x\n  base_topic: a//b\n", "t.yaml:3: mqtt.base_topic: must not hold an empty level"},
		{"mqtt:\n  url: mqtt://x\n  cert_file: c.pem\n", "mqtt.cert_file: a client certificate needs both"},
		{"sensors:\n  - {name: d, driver: sim-wave, device_class: Door!}\n", "t.yaml:2: sensors[0].device_class: want a Home Assistant device class"},
	} {
		_, err := Parse("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := Parse("t.yaml", []byte("sensors:\n  - {name: d, driver: gpio-input, pin: GPIO27, device_class: door}\n")); err != nil {
		t.Errorf("device_class door: %v", err)
	}
}
