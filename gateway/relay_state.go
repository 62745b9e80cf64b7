package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/internal/fileutil"
	"github.com/edgegate/edgegate/protocol"
)

// relayStateFile, in the data dir, keeps the last confirmed state of every
// relay with initial: restore.
const relayStateFile = "relay-state.json"

type relayStateDoc struct {
	Relays map[string]string `json:"relays"` // name → "on" | "off"
}

// usesRestore reports whether any relay starts in its saved state.
func usesRestore(cfg *config.Config) bool {
	for _, r := range cfg.Relays {
		if r.Initial == "restore" {
			return true
		}
	}
	return false
}

// loadRelayStates reads the saved states (name → on). A missing file means
// none saved; an unreadable or corrupt one is logged and ignored, so those
// relays start off, the safe default.
func loadRelayStates(dataDir string, cfg *config.Config, log *slog.Logger) (map[string]bool, error) {
	if !usesRestore(cfg) {
		return nil, nil
	}
	if dataDir == "" {
		return nil, errors.New("relays with initial: restore need a data directory to keep their state in (run with --data-dir DIR)")
	}
	path := filepath.Join(dataDir, relayStateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		log.Info("no saved relay states yet; relays with initial: restore start off", "file", path)
		return map[string]bool{}, nil
	}
	var doc relayStateDoc
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	if err != nil {
		log.Error("cannot read the saved relay states; relays with initial: restore start off", "file", path, "err", err)
		return map[string]bool{}, nil
	}
	saved := map[string]bool{}
	for name, st := range doc.Relays {
		if on, ok := protocol.ParseState(st); ok {
			saved[name] = on
		}
	}
	return saved, nil
}

// relayStateStore saves the confirmed state of the relays with initial:
// restore whenever one changes. It is an event sink: the relay service
// only signals it; a goroutine of its own writes the file (atomically:
// temp file, fsync, rename, fsync of the directory).
type relayStateStore struct {
	path  string
	rs    *relayService
	names map[string]bool // relays with initial: restore
	log   *slog.Logger
	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	saved map[string]bool
	list  []protocol.RelayInfo
}

func startRelayStateStore(dataDir string, cfg *config.Config, rs *relayService, saved map[string]bool, log *slog.Logger) *relayStateStore {
	st := &relayStateStore{
		path: filepath.Join(dataDir, relayStateFile), rs: rs, log: log, names: map[string]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		saved: saved,
	}
	for _, r := range cfg.Relays {
		if r.Initial == "restore" {
			st.names[r.Name] = true
		}
	}
	rs.subscribe(st)
	st.kick <- struct{}{} // save the states the relays started in
	go st.run()
	return st
}

// relayEvent is called by the relay service on every change; it never blocks.
func (st *relayStateStore) relayEvent(sharedEvent) {
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

func (st *relayStateStore) run() {
	defer close(st.done)
	for {
		select {
		case <-st.kick:
			st.save()
		case <-st.stop:
			return
		}
	}
}

// save writes the current states if they differ from the saved ones.
func (st *relayStateStore) save() {
	st.list = st.rs.Snapshot(st.list)
	now := map[string]bool{}
	same := true
	for _, r := range st.list {
		if st.names[r.Name] {
			now[r.Name] = r.On
			if was, ok := st.saved[r.Name]; !ok || was != r.On {
				same = false
			}
		}
	}
	if same && len(now) == len(st.saved) {
		return
	}
	doc := relayStateDoc{Relays: map[string]string{}}
	for name, on := range now {
		doc.Relays[name] = protocol.StateString(on)
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := fileutil.WriteAtomic(st.path, append(b, '\n'), true); err != nil {
		st.log.Error("cannot save the relay states; initial: restore will use older ones", "file", st.path, "err", err)
		return
	}
	st.saved = now
}

// close stops following changes (the failsafe states applied at shutdown
// are deliberately not saved: restore brings back the state the relays had
// in operation) and saves the last states.
func (st *relayStateStore) close() {
	st.once.Do(func() {
		st.rs.unsubscribe(st)
		close(st.stop)
		<-st.done
		st.save()
	})
}
