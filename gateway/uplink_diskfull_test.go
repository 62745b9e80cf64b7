package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/gateway/uplink"
	"github.com/edgegate/edgegate/protocol"
)

// TestUplinkDiskFull fills the data directory's file system (a 64 KiB
// tmpfs): relays still switch, /healthz says why samples are not buffered,
// the drops are counted, and once space returns the buffer writes again
// without a restart. The spool's tests cover the same path with an
// injected error where mounting is not permitted.
func TestUplinkDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 40<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	// A backend that is never there: every sample stays buffered.
	g, _, shutdown := startUplinkGatewayIn(t, mnt, "ws://127.0.0.1:1/uplink", ", fsync: batch")
	t.Cleanup(shutdown) // before the umount
	m := waitMetrics(t, g, "a full disk", func(m uplink.Metrics) bool {
		return strings.Contains(m.BufferError, "no space left on device")
	})
	if !strings.Contains(m.BufferError, "free space") {
		t.Fatalf("buffer error %q does not say what to do", m.BufferError)
	}
	rec := httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/healthz", nil))
	var health struct {
		Uplink map[string]any `json:"uplink"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &health); err != nil || !strings.Contains(fmt.Sprint(health.Uplink["buffer_error"]), "no space left") {
		t.Fatalf("/healthz uplink %v (%v): want buffer_error", health.Uplink, err)
	}
	for _, on := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := g.relays.Set(ctx, "pump", on, protocol.SourceClient)
		cancel()
		if err != nil {
			t.Fatalf("relay set %v on a full disk: %v", on, err)
		}
	}
	rec = httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\nedgegate_uplink_buffer_corrupt_records_total 0\n") {
		t.Fatalf("/metrics has no corrupt-records counter:\n%s", rec.Body.String())
	}

	os.Remove(filler)
	before := g.uplink.Metrics()
	waitMetrics(t, g, "the buffer writing again", func(m uplink.Metrics) bool {
		return m.BufferError == "" && m.BufferBytes > before.BufferBytes
	})
}
