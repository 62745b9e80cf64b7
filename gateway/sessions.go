package gateway

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/gateway/fileutil"
)

// Server-side ends of browser sessions. A session cookie is a signed token
// (role and expiry), so it needs no state to be checked and it survives a
// restart; what the gateway keeps is the list of the ones ended early by
// POST /auth/logout, each until it would have expired anyway. The list is
// kept in the data dir (sessions-revoked.json), so that a restart does not
// bring an ended session back.
//
// The list is bounded (maxRevoked). Were it ever full of unexpired
// entries, the gateway ends every session signed up to that moment instead
// (a cut-off), so that no ended session is ever forgotten: the worst a
// flood of logouts can do is sign every browser out.

// maxRevoked bounds the list of ended sessions (about 60 bytes each).
const maxRevoked = 4096

const revokedFile = "sessions-revoked.json"

type sessionStore struct {
	log  *slog.Logger
	file string // "": kept in memory only

	mu      sync.Mutex
	revoked map[string]int64 // token signature → expiry, Unix seconds
	// cutoff: every session expiring at or before it has ended.
	cutoff int64
}

type revokedState struct {
	Cutoff  int64            `json:"cutoff,omitempty"`
	Revoked map[string]int64 `json:"revoked"`
}

func newSessionStore(dataDir string, log *slog.Logger) *sessionStore {
	s := &sessionStore{log: log, revoked: map[string]int64{}}
	if dataDir == "" {
		return s
	}
	s.file = filepath.Join(dataDir, revokedFile)
	b, err := os.ReadFile(s.file)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot read the list of ended browser sessions; every session signed before now is ended", "file", s.file, "err", err)
			s.cutoff = time.Now().Add(sessionLifetime).Unix()
		}
		return s
	}
	var st revokedState
	if err := json.Unmarshal(b, &st); err != nil {
		log.Warn("the list of ended browser sessions is damaged; every session signed before now is ended", "file", s.file, "err", err)
		s.cutoff = time.Now().Add(sessionLifetime).Unix()
		return s
	}
	s.cutoff = st.Cutoff
	now := time.Now().Unix()
	for sig, exp := range st.Revoked {
		if exp > now && len(s.revoked) < maxRevoked {
			s.revoked[sig] = exp
		}
	}
	return s
}

// signature is the part of a signed token that identifies it.
func signature(tok string) string {
	return tok[strings.LastIndexByte(tok, '.')+1:]
}

// ended reports whether the session tok, valid until exp, was ended.
func (s *sessionStore) ended(tok string, exp time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp.Unix() <= s.cutoff {
		return true
	}
	_, ok := s.revoked[signature(tok)]
	return ok
}

// end ends the session tok (valid until exp) at now; lifetime is how long
// sessions live, for the cut-off when the list is full.
func (s *sessionStore) end(tok string, exp, now time.Time, lifetime time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sig, e := range s.revoked {
		if e <= now.Unix() {
			delete(s.revoked, sig)
		}
	}
	if len(s.revoked) >= maxRevoked {
		// Every session signed until now ends: those expire by now+lifetime.
		s.cutoff = now.Add(lifetime).Unix()
		clear(s.revoked)
		s.log.Warn("too many browser sessions ended early to keep track of; every browser session is ended, sign in again", "limit", maxRevoked)
	} else {
		s.revoked[signature(tok)] = exp.Unix()
	}
	s.save()
}

func (s *sessionStore) save() {
	if s.file == "" {
		return
	}
	b, _ := json.Marshal(revokedState{Cutoff: s.cutoff, Revoked: s.revoked})
	if err := fileutil.WriteAtomic(s.file, b, true); err != nil {
		s.log.Warn("cannot keep the list of ended browser sessions; an ended session would work again after a restart", "file", s.file, "err", err)
	}
}
