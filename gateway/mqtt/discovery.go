package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/fileutil"
	"github.com/edgegate/edgegate/protocol"
)

// discoveredFile lists, in the bridge's directory, the discovery config
// topics published last, so that those of entities since removed from the
// configuration are cleared.
const discoveredFile = "discovery.json"

// entity is one Home Assistant entity: its config topic and payload.
type entity struct {
	topic   string
	payload []byte
}

// discoveryEntities builds the config of every relay and sensor.
func (b *Bridge) discoveryEntities() []entity {
	m := b.cfg
	node := "edgegate_" + b.id
	dev := &protocol.HADevice{
		Identifiers: []string{node}, Name: b.opts.Config.Gateway.ID,
		Manufacturer: "edgegate", Model: "edgegate", SWVersion: b.opts.Version,
	}
	common := func(name, obj string) protocol.HAConfig {
		return protocol.HAConfig{
			Name: name, UniqueID: node + "_" + obj,
			AvailabilityTopic: b.base + "/status", PayloadAvailable: "online", PayloadNotAvailable: "offline",
			QoS: m.QoS, Device: dev,
		}
	}
	var out []entity
	for _, r := range b.opts.Config.Relays {
		obj := protocol.TopicLevel(r.Name)
		c := common(r.Name, obj)
		c.StateTopic = b.base + "/relay/" + r.Name
		c.CommandTopic = c.StateTopic + "/set"
		c.PayloadOn, c.PayloadOff, c.StateOn, c.StateOff = "on", "off", "on", "off"
		out = append(out, entity{topic: m.DiscoveryPrefix + "/switch/" + node + "/" + obj + "/config", payload: protocol.AppendHAConfig(nil, &c)})
	}
	byDevice := map[string]*config.Sensor{}
	for i := range b.opts.Config.Sensors {
		s := &b.opts.Config.Sensors[i]
		byDevice[s.Name] = s
	}
	for i, s := range b.catalog {
		obj := protocol.TopicLevel(s.Name)
		c := common(s.Name, obj)
		c.StateTopic = b.sensorT[i]
		c.ValueTemplate = "{{ value_json.value }}"
		devName, _, _ := strings.Cut(s.Name, ".")
		sc := byDevice[devName]
		component := "sensor"
		if sc != nil && sc.Driver == config.DriverGPIOInput {
			component = "binary_sensor"
			c.PayloadOn, c.PayloadOff = "1", "0"
			c.DeviceClass = sc.DeviceClass
		} else {
			c.UnitOfMeasurement, c.DeviceClass = protocol.HASensorUnit(s.Unit)
			c.StateClass = "measurement"
			if sc != nil && sc.DeviceClass != "" {
				c.DeviceClass = sc.DeviceClass
			}
		}
		out = append(out, entity{topic: m.DiscoveryPrefix + "/" + component + "/" + node + "/" + obj + "/config", payload: protocol.AppendHAConfig(nil, &c)})
	}
	return out
}

// publishDiscovery publishes every entity's config, then clears those
// published before whose entity left the configuration, and remembers
// what it published.
func (b *Bridge) publishDiscovery(ctx context.Context, p *publisher, lost *lostSignal) {
	qos := byte(b.cfg.QoS)
	current := make([]string, 0, len(b.entities))
	for _, e := range b.entities {
		p.pub(e.topic, qos, true, e.payload)
		b.discPub.Add(1)
		current = append(current, e.topic)
	}
	path := filepath.Join(b.opts.DataDir, dirName, discoveredFile)
	var before []string
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &before); err != nil {
			b.log.Warn("mqtt: unreadable list of discovery topics; stale entities are not cleared", "file", path, "err", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		b.log.Warn("mqtt: list of discovery topics", "err", err)
	}
	var stale []string
	for _, t := range before {
		if !slices.Contains(current, t) && strings.HasSuffix(t, "/config") {
			stale = append(stale, t)
		}
	}
	var tokens []paho.Token
	for _, t := range stale {
		b.log.Info("mqtt: removing the discovery config of an entity no longer configured", "topic", t)
		p.pub(t, qos, true, []byte{})
		tokens = append(tokens, p.tokens[len(p.tokens)-1])
	}
	// Forget the stale topics once cleared; those not confirmed stay
	// listed, to be cleared next time.
	keep := current
	for i, t := range tokens {
		if err := waitToken(ctx, t, lost, 10*time.Second); err != nil {
			keep = append(keep, stale[i:]...)
			break
		}
	}
	if slices.Equal(keep, before) {
		return
	}
	data, _ := json.Marshal(keep)
	if err := fileutil.WriteAtomic(path, data, true); err != nil {
		b.log.Warn("mqtt: save the list of discovery topics", "err", err)
	}
}

// waitToken waits up to d for t; an error when t failed or did not
// complete.
func waitToken(ctx context.Context, t paho.Token, lost *lostSignal, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-lost.c:
		return fmt.Errorf("connection lost: %w", lost.err)
	case <-timer.C:
		return errors.New("timeout")
	}
}
