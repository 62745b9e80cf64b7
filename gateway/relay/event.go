package relay

import (
	"sync/atomic"

	"github.com/edgegate/edgegate/protocol"
)

// Subscriber receives every encoded state event, in the order of the
// changes. RelayEvent is called with the service's lock held: it must not
// block nor call back into the Service. The event is valid during the call;
// a subscriber that keeps it past the call takes a reference (ev.Retain)
// and releases that once done with the bytes.
type Subscriber interface {
	RelayEvent(ev Event)
}

// Event is one encoded state event, shared by every subscriber that keeps
// it. Its bytes are cut from a chunk that is reused once the service and
// every subscriber have released it, so that a steady stream of changes
// allocates nothing.
type Event struct {
	// Data is the event's JSON. Do not modify it.
	Data  []byte
	chunk *eventChunk // nil for an event too large for a chunk
}

// Retain takes a reference that keeps ev.Data valid past the call to
// RelayEvent, until the reference's Release is called, exactly once (by a
// connection's writer, once it has written or dropped the frame).
// Retaining allocates nothing.
func (ev Event) Retain() interface{ Release() } {
	if ev.chunk == nil {
		return noRef{} // the bytes are the GC's: nothing to count
	}
	ev.chunk.refs.Add(1)
	return ev.chunk
}

// noRef is the reference of an event whose bytes are not pooled.
type noRef struct{}

func (noRef) Release() {}

// Subscribe adds sub and calls first, when not nil, with every relay's
// state at that instant, before sub can get any event: sub gets every
// change after that snapshot and none before. first runs with the
// service's lock held (so that no change can come between), so it must
// not block nor call into the Service; it is the place to queue a hello
// built from the snapshot, which is the caller's to keep. unsubscribe
// removes sub; no event reaches sub once it has returned. Calling it again
// does nothing.
func (s *Service) Subscribe(sub Subscriber, first func(snapshot []protocol.RelayInfo)) (unsubscribe func()) {
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	if first != nil {
		first(s.snapshotLocked(nil))
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, sub)
	}
}

// eventChunkSize is the size of the chunks that events are cut from.
const eventChunkSize = 16 << 10

// eventChunk is a buffer that events are cut from, one after another.
// refs counts the events cut from it still kept by a subscriber, plus one
// while the service cuts from it; at zero it goes back to freeEventChunks.
type eventChunk struct {
	buf  []byte
	refs atomic.Int32
}

// freeEventChunks holds released chunks for reuse. In steady state two
// circulate (the one being cut and the one whose last events are being
// written); a few more absorb a burst, and beyond that they go to the GC.
var freeEventChunks = make(chan *eventChunk, 4)

func newEventChunk() *eventChunk {
	var c *eventChunk
	select {
	case c = <-freeEventChunks:
	default:
		c = &eventChunk{buf: make([]byte, 0, eventChunkSize)}
	}
	c.refs.Store(1)
	return c
}

// Release drops one reference; the last one recycles the chunk.
func (c *eventChunk) Release() {
	if c != nil && c.refs.Add(-1) == 0 {
		c.buf = c.buf[:0]
		select {
		case freeEventChunks <- c:
		default:
		}
	}
}

// copyEvent returns a copy of an encoded event for the subscribers to
// keep, cut from the current chunk. Call with s.mu held.
func (s *Service) copyEvent(b []byte) Event {
	if len(b) > eventChunkSize/8 {
		return Event{Data: append([]byte(nil), b...)} // rare: left to the GC
	}
	c := s.evchunk
	if c == nil || cap(c.buf)-len(c.buf) < len(b) {
		c.Release() // the service's own reference; subscribers may still hold theirs
		c = newEventChunk()
		s.evchunk = c
	}
	start := len(c.buf)
	c.buf = append(c.buf, b...)
	return Event{Data: c.buf[start:len(c.buf):len(c.buf)], chunk: c} // capped: an append cannot reach the next
}
