package proctest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

var regexpReady = regexp.MustCompile(`ready`)

// A process still running when its test ends gets SIGTERM first, so that
// it can clean up (the gateway's simulated serial ports remove their
// temporary directories on SIGTERM, not on SIGKILL), and is killed only if
// it does not exit within the grace period.
func TestCleanupStopsWithSIGTERM(t *testing.T) {
	dir := t.TempDir()
	cleaned := filepath.Join(dir, "cleaned")
	var p *Proc
	t.Run("runs", func(t *testing.T) {
		p = Start(t, "sh", "/bin/sh", "-c", `trap 'touch "$0"; exit 0' TERM; echo ready; while :; do sleep 0.05; done`, cleaned)
		p.WaitFor(t, regexpReady, 5*time.Second)
	})
	select {
	case <-p.Exited:
	default:
		t.Fatal("the process still runs after its test ended")
	}
	if _, err := os.Stat(cleaned); err != nil {
		t.Errorf("the process was not stopped with SIGTERM (its trap did not run): %v", err)
	}
}
