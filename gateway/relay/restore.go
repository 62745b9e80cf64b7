package relay

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/fileutil"
	"github.com/edgegate/edgegate/protocol"
)

// stateFile, in the data dir, keeps the last confirmed state of every
// relay with initial: restore.
const stateFile = "relay-state.json"

type stateDoc struct {
	Relays map[string]string `json:"relays"` // name → "on" | "off"
}

// Initial is the policy of the state each relay starts in: initial: on
// starts on; initial: restore the state saved in the data directory by the
// last run (off when none was); anything else off. The zero value and nil
// know of no saved state.
type Initial struct {
	path    string          // of the saved states; "" with no relay to restore
	restore map[string]bool // relays with initial: restore
	saved   map[string]bool // name → on, as last saved
}

// LoadInitial reads the saved states when a relay of cfg has initial:
// restore, which needs dataDir. A missing file means none saved; an
// unreadable or corrupt one is logged and ignored, so those relays start
// off, the safe default.
func LoadInitial(dataDir string, cfg *config.Config, log *slog.Logger) (*Initial, error) {
	in := &Initial{restore: map[string]bool{}}
	for _, r := range cfg.Relays {
		if r.Initial == "restore" {
			in.restore[r.Name] = true
		}
	}
	if len(in.restore) == 0 {
		return in, nil
	}
	if dataDir == "" {
		return nil, errors.New("relays with initial: restore need a data directory to keep their state in (run with --data-dir DIR)")
	}
	in.path = filepath.Join(dataDir, stateFile)
	in.saved = map[string]bool{}
	b, err := os.ReadFile(in.path)
	if errors.Is(err, os.ErrNotExist) {
		log.Info("no saved relay states yet; relays with initial: restore start off", "file", in.path)
		return in, nil
	}
	var doc stateDoc
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	if err != nil {
		log.Error("cannot read the saved relay states; relays with initial: restore start off", "file", in.path, "err", err)
		return in, nil
	}
	for name, st := range doc.Relays {
		if on, ok := protocol.ParseState(st); ok {
			in.saved[name] = on
		}
	}
	return in, nil
}

// On reports whether r starts on: the first level its output sees.
func (in *Initial) On(r config.Relay) bool {
	if r.Initial == "on" {
		return true
	}
	return in != nil && r.Initial == "restore" && in.saved[r.Name]
}

// restores reports whether any relay starts in its saved state.
func (in *Initial) restores() bool { return in != nil && in.path != "" }

// stateStore saves the confirmed state of the relays with initial: restore
// whenever one changes. It is a subscriber: the service only signals it; a
// goroutine of its own writes the file (atomically: temp file, fsync,
// rename, fsync of the directory).
type stateStore struct {
	path        string
	s           *Service
	names       map[string]bool // relays with initial: restore
	log         *slog.Logger
	kick        chan struct{}
	stop        chan struct{}
	done        chan struct{}
	once        sync.Once
	unsubscribe func()
	saved       map[string]bool
	list        []protocol.RelayInfo
}

func startStateStore(s *Service, in *Initial, log *slog.Logger) *stateStore {
	st := &stateStore{
		path: in.path, s: s, log: log, names: in.restore,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		saved: in.saved,
	}
	// The states the relays started in are saved first.
	st.unsubscribe = s.Subscribe(st, func([]protocol.RelayInfo) { st.signal() })
	go st.run()
	return st
}

// RelayEvent is called by the service on every change; it never blocks.
func (st *stateStore) RelayEvent(Event) { st.signal() }

func (st *stateStore) signal() {
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

func (st *stateStore) run() {
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
func (st *stateStore) save() {
	st.list = st.s.Snapshot(st.list)
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
	doc := stateDoc{Relays: map[string]string{}}
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

// close stops following changes and saves the last states.
func (st *stateStore) close() {
	st.once.Do(func() {
		st.unsubscribe()
		close(st.stop)
		<-st.done
		st.save()
	})
}
