package burst

import (
	"encoding/binary"
	"errors"
	"io"

	"golang.org/x/net/http2"
)

// Frame reading. The connection reads frames itself instead of through http2.Framer, whose
// ReadFrame allocates a frame value for every HEADERS, SETTINGS or WINDOW_UPDATE: the 9-byte
// header and the payload land in buffers the reader owns, and the payload is only valid until
// the next read. Writing control frames goes through an http2.Framer over the connection's
// output buffer; HEADERS and DATA of requests are written by appendFrameHeader.

// frameHeaderLen is the size of an HTTP/2 frame header.
const frameHeaderLen = 9

// maxReadFrame is the largest frame payload the client accepts (SETTINGS_MAX_FRAME_SIZE,
// left at the protocol default).
const maxReadFrame = 16384

// errFrameSize is a frame longer than maxReadFrame.
var errFrameSize = errors.New("burst: frame too large")

// frameHeader is a decoded frame header.
type frameHeader struct {
	length   uint32
	typ      http2.FrameType
	flags    http2.Flags
	streamID uint32
}

// frameReader reads frames from r into buf.
type frameReader struct {
	r   io.Reader
	hdr [frameHeaderLen]byte
	buf []byte
}

// next reads one frame; the payload is valid until the next call.
func (fr *frameReader) next() (frameHeader, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return frameHeader{}, nil, err
	}
	h := parseFrameHeader(fr.hdr[:])
	if h.length > maxReadFrame {
		return h, nil, errFrameSize
	}
	if cap(fr.buf) < int(h.length) {
		fr.buf = make([]byte, maxReadFrame)
	}
	p := fr.buf[:h.length]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, p, nil
}

// parseFrameHeader decodes 9 header bytes.
func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:      http2.FrameType(b[3]),
		flags:    http2.Flags(b[4]),
		streamID: binary.BigEndian.Uint32(b[5:]) & (1<<31 - 1),
	}
}

// appendFrameHeader appends a frame header.
func appendFrameHeader(dst []byte, length int, typ http2.FrameType, flags http2.Flags, stream uint32) []byte {
	return append(dst, byte(length>>16), byte(length>>8), byte(length), byte(typ), byte(flags),
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

// errPadding is a frame whose padding does not fit.
var errPadding = errors.New("burst: bad padding")

// unpad strips the padding of a PADDED frame payload.
func unpad(p []byte, flags http2.Flags) ([]byte, error) {
	if flags&http2.FlagDataPadded == 0 { // same bit for HEADERS
		return p, nil
	}
	if len(p) == 0 {
		return nil, errPadding
	}
	pad := int(p[0])
	p = p[1:]
	if pad > len(p) {
		return nil, errPadding
	}
	return p[:len(p)-pad], nil
}

// appendWriter is an io.Writer appending to the connection's output buffer, for the control
// frames http2.Framer writes.
type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }
