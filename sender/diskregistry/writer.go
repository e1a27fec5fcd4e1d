package diskregistry

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/salvopush/salvo/sender"
)

// Writer streams users into a new registry file. Users must be added in strictly increasing
// byte order of their IDs (which also rules out duplicates). Nothing is visible under the
// final name until Commit renames the finished file into place; Abort (or a failed Commit)
// removes the temporary file. A Writer is not safe for concurrent use.
type Writer struct {
	dir  string
	f    *os.File
	bw   *bufio.Writer
	tab  *crc32.Table
	crc  uint32 // of the records written so far
	size uint64 // bytes of records written so far
	err  error  // sticky I/O error
	done bool

	users, devices uint64
	last           string
	hashes, offs   []uint64 // per user: hash of the ID, offset of its record

	strs    map[string]uint64 // app and locale strings -> index in strList
	strList []string
	rec     []byte // scratch for one record
	codec   *codec
}

// NewWriter starts a registry in dir (created if missing). The file is written to a
// temporary name in dir and becomes dir/FileName on Commit, replacing any previous one.
func NewWriter(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("diskregistry: new writer: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+FileName+".*")
	if err != nil {
		return nil, fmt.Errorf("diskregistry: new writer: %w", err)
	}
	w := &Writer{
		dir:   dir,
		f:     f,
		bw:    bufio.NewWriterSize(f, 1<<20),
		tab:   castagnoli(),
		strs:  map[string]uint64{},
		codec: newCodec(),
	}
	if _, err := w.bw.Write(make([]byte, headerSize)); err != nil { // the header goes here on Commit
		w.Abort()
		return nil, fmt.Errorf("diskregistry: new writer: %w", err)
	}
	return w, nil
}

// Add appends one user and its devices (possibly none). It fails without writing anything
// when the user ID is empty, too long or not after the previous one, or when a device has
// an unknown platform, an empty or too long token, or too many devices; such errors are not
// sticky. An I/O error is sticky: every later call returns it.
func (w *Writer) Add(userID string, devices []sender.Device) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("diskregistry: add: writer already finished")
	}
	if err := w.check(userID, devices); err != nil {
		return fmt.Errorf("diskregistry: add %q: %w", userID, err)
	}
	r := w.rec[:0]
	r = binary.AppendUvarint(r, uint64(len(userID)))
	r = append(r, userID...)
	r = binary.AppendUvarint(r, uint64(len(devices)))
	for _, d := range devices {
		kind := w.codec.kind(d.Token)
		r = append(r, byte(d.Platform)|byte(kind)<<4)
		r = binary.AppendUvarint(r, w.intern(d.App))
		r = binary.AppendUvarint(r, w.intern(d.Locale))
		r = binary.AppendUvarint(r, uint64(len(d.Token)))
		r = w.codec.appendToken(r, d.Token, kind)
	}
	w.rec = r
	if _, err := w.bw.Write(r); err != nil {
		w.err = fmt.Errorf("diskregistry: write: %w", err)
		return w.err
	}
	w.crc = crc32.Update(w.crc, w.tab, r)
	w.hashes = append(w.hashes, hashID(userID))
	w.offs = append(w.offs, w.size)
	w.size += uint64(len(r))
	w.users++
	w.devices += uint64(len(devices))
	w.last = userID
	return nil
}

func (w *Writer) check(userID string, devices []sender.Device) error {
	switch {
	case userID == "":
		return errors.New("empty user ID")
	case len(userID) > MaxUserIDLen:
		return fmt.Errorf("user ID longer than %d bytes", MaxUserIDLen)
	case w.users > 0 && userID <= w.last:
		return fmt.Errorf("user IDs must be added in increasing order (previous %q)", w.last)
	case len(devices) > MaxDevicesPerUser:
		return fmt.Errorf("%d devices, at most %d", len(devices), MaxDevicesPerUser)
	}
	for i, d := range devices {
		switch {
		case d.Platform != sender.PlatformIOS && d.Platform != sender.PlatformAndroid:
			return fmt.Errorf("device %d: unknown platform %d", i, d.Platform)
		case d.Token == "":
			return fmt.Errorf("device %d: empty token", i)
		case len(d.Token) > MaxTokenLen:
			return fmt.Errorf("device %d: token longer than %d bytes", i, MaxTokenLen)
		case len(d.App) > maxStringLen || len(d.Locale) > maxStringLen:
			return fmt.Errorf("device %d: app or locale longer than %d bytes", i, maxStringLen)
		}
	}
	return nil
}

// intern returns the index of s in the strings section, adding it if new.
func (w *Writer) intern(s string) uint64 {
	if i, ok := w.strs[s]; ok {
		return i
	}
	i := uint64(len(w.strList))
	w.strs[s] = i
	w.strList = append(w.strList, s)
	return i
}

// Commit writes the strings, the index and the header and renames the file to
// dir/FileName. The Writer cannot be used afterwards. Commit does not fsync: a file torn by
// a crash fails its checksums on Open, and is then regenerated.
func (w *Writer) Commit() error {
	if w.err != nil {
		w.Abort()
		return w.err
	}
	if w.done {
		return errors.New("diskregistry: commit: writer already finished")
	}
	if err := w.commit(); err != nil {
		w.Abort()
		return fmt.Errorf("diskregistry: commit: %w", err)
	}
	return nil
}

func (w *Writer) commit() error {
	h := header{version: Version, slotWidth: 4, users: w.users, devices: w.devices}
	h.secs[secRecords] = section{off: headerSize, size: w.size, crc: w.crc}

	var strs []byte
	strs = binary.AppendUvarint(strs, uint64(len(w.strList)))
	for _, s := range w.strList {
		strs = binary.AppendUvarint(strs, uint64(len(s)))
		strs = append(strs, s...)
	}
	h.secs[secStrings] = section{off: headerSize + w.size, size: uint64(len(strs)), crc: crc32.Checksum(strs, w.tab)}

	if w.size >= 1<<32-1 {
		h.slotWidth = 8
	}
	h.slots = tableSlots(w.users)
	table := buildTable(w.hashes, w.offs, h.slots, int(h.slotWidth))
	w.hashes, w.offs = nil, nil
	h.secs[secTable] = section{off: h.secs[secStrings].off + h.secs[secStrings].size, size: uint64(len(table)), crc: crc32.Checksum(table, w.tab)}

	if _, err := w.bw.Write(strs); err != nil {
		return err
	}
	if _, err := w.bw.Write(table); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if _, err := w.f.WriteAt(h.encode(), 0); err != nil {
		return err
	}
	if err := w.f.Chmod(0o644); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.f.Name(), filepath.Join(w.dir, FileName)); err != nil {
		return err
	}
	w.done = true
	return nil
}

// buildTable lays out the hash index: linear probing from hash & (slots-1), each slot the
// record offset + 1 (0 is empty) in width bytes.
func buildTable(hashes, offs []uint64, slots uint64, width int) []byte {
	table := make([]byte, slots*uint64(width))
	mask := slots - 1
	for u, h := range hashes {
		for i := h & mask; ; i = (i + 1) & mask {
			p := i * uint64(width)
			if width == 4 {
				if binary.LittleEndian.Uint32(table[p:]) == 0 {
					binary.LittleEndian.PutUint32(table[p:], uint32(offs[u]+1))
					break
				}
			} else if binary.LittleEndian.Uint64(table[p:]) == 0 {
				binary.LittleEndian.PutUint64(table[p:], offs[u]+1)
				break
			}
		}
	}
	return table
}

// Abort discards the registry being written. It is a no-op after Commit, so it can be
// deferred.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}
