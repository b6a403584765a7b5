// Package sse reads and writes server-sent events as the WHATWG standard
// defines them: lines end in LF, CRLF or CR; "data:" with or without one
// space after the colon; comment lines (":…") ignored; several data lines
// in one event joined with LF; an event ends at a blank line. The provider
// adapters parse upstream streams with it, so no adapter depends on how one
// provider happens to space its events.
package sse

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// Event is one dispatched event. Its slices belong to the Reader and are
// valid until the next call to Next.
type Event struct {
	Name []byte // the "event:" field; empty for the default "message"
	Data []byte // the data lines joined with LF
	ID   []byte // the "id:" field, if the event carried one
}

// MaxEvent bounds one line and one event's data, so a stream that never
// ends a line cannot grow a buffer without end.
const MaxEvent = 8 << 20

// ErrTooLarge is returned when a line or an event exceeds MaxEvent.
var ErrTooLarge = errors.New("sse: event larger than 8 MiB")

// Reader parses events from an upstream body. It reads into a small buffer
// of its own (512 bytes, grown only for a longer line), so ten thousand
// open streams hold little memory: the transport buffers the body already
// (4 KiB per HTTP/1.1 connection, HTTP/2's per-stream chunks), and a
// second buffer of that size per stream was 40 MB at 10,000 streams.
type Reader struct {
	src    io.Reader
	buf    []byte
	r, w   int
	err    error
	skipLF bool // the last line ended in CR at the buffer's end: a leading LF belongs to it

	data, name, id []byte
}

// readBuf is a Reader's buffer to start with, and what a pooled one goes
// back to after a stream whose lines grew it past 4 KiB.
const readBuf = 512

var readerPool = sync.Pool{New: func() any { return &Reader{buf: make([]byte, readBuf)} }}

// NewReader returns a pooled Reader over src; call Release when done.
func NewReader(src io.Reader) *Reader {
	rd := readerPool.Get().(*Reader)
	rd.src = src
	return rd
}

// Release returns the reader to the pool.
func (r *Reader) Release() {
	*r = Reader{buf: r.buf, data: r.data[:0], name: r.name[:0], id: r.id[:0]}
	if len(r.buf) > 4<<10 {
		r.buf = make([]byte, readBuf)
	}
	if cap(r.data) > 4<<10 {
		r.data = nil
	}
	readerPool.Put(r)
}

// Buffered reports how many bytes are read ahead and not yet parsed: zero
// means the upstream has sent nothing more for now, the moment to flush.
func (r *Reader) Buffered() int { return r.w - r.r }

// Next returns the next event. At the end of the stream it returns io.EOF;
// a last event with data but no blank line after it is still dispatched
// first (providers that forget the final blank line exist). Any other
// error is the transport's, or ErrTooLarge.
func (r *Reader) Next() (Event, error) {
	r.data, r.name, r.id = r.data[:0], r.name[:0], r.id[:0]
	hasData := false
	for {
		line, err := r.readLine()
		if err != nil {
			if hasData && errors.Is(err, io.EOF) {
				return r.event(), nil
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if hasData {
				return r.event(), nil
			}
			r.name, r.id = r.name[:0], r.id[:0]
			continue
		}
		if line[0] == ':' {
			continue // a comment, often a keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > MaxEvent {
				return Event{}, ErrTooLarge
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.name = append(r.name[:0], value...)
		case "id":
			r.id = append(r.id[:0], value...)
		}
	}
}

func (r *Reader) event() Event { return Event{Name: r.name, Data: r.data, ID: r.id} }

// readLine returns the next line without its end (LF, CRLF or CR). The
// line points into the buffer and is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	for {
		if r.skipLF && r.r < r.w {
			if r.buf[r.r] == '\n' {
				r.r++
			}
			r.skipLF = false
		}
		b := r.buf[r.r:r.w]
		end := bytes.IndexByte(b, '\n')
		cr := -1
		if end >= 0 {
			cr = bytes.IndexByte(b[:end], '\r')
		} else {
			cr = bytes.IndexByte(b, '\r')
		}
		if cr >= 0 && (end < 0 || cr < end) {
			line := b[:cr]
			r.r += cr + 1
			if r.r < r.w {
				if r.buf[r.r] == '\n' {
					r.r++
				}
			} else {
				r.skipLF = true
			}
			return line, nil
		}
		if end >= 0 {
			r.r += end + 1
			return b[:end], nil
		}
		if r.err != nil {
			if len(b) > 0 {
				r.r = r.w
				return b, nil
			}
			return nil, r.err
		}
		if r.r > 0 {
			r.w = copy(r.buf, b)
			r.r = 0
		}
		if r.w == len(r.buf) {
			if len(r.buf) >= MaxEvent {
				return nil, ErrTooLarge
			}
			nb := make([]byte, 2*len(r.buf))
			copy(nb, r.buf[:r.w])
			r.buf = nb
		}
		n, err := r.src.Read(r.buf[r.w:])
		r.w += n
		if err != nil {
			r.err = err
		}
	}
}

// AppendEvent appends ev in the canonical form "event: …\ndata: …\n\n",
// one data line per line of its data.
func AppendEvent(dst []byte, name, data []byte) []byte {
	if len(name) > 0 {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	for {
		i := bytes.IndexByte(data, '\n')
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		data = data[i+1:]
	}
	return append(dst, '\n', '\n')
}
