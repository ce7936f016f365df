package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"

	"github.com/kvsession/kvsession"
)

// The layout of a record file; see the package documentation.
const (
	magic         = "kvsf"
	formatVersion = 1
	flagExpires   = 1 << 0

	fixedLen = 36 // magic, format, flags, expiry (8+4), version, key and value lengths
	crcLen   = 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt reports a file that does not parse as a record. It wraps
// kvsession.ErrCorrupt, so that the session manager reports it as a corrupt
// record (EventCorruptRecord) rather than as an unknown ID.
var errCorrupt = fmt.Errorf("%w", kvsession.ErrCorrupt)

// record is the content of a record file or of a user index entry (which
// has no value).
type record struct {
	key       string
	expiresAt time.Time
	version   uint64
	value     []byte
}

// encode returns the file content for r.
func (r *record) encode() ([]byte, error) {
	if len(r.key) > math.MaxUint16 {
		return nil, fmt.Errorf("key of %d bytes is longer than %d", len(r.key), math.MaxUint16)
	}
	b := make([]byte, fixedLen, fixedLen+len(r.key)+len(r.value)+crcLen)
	copy(b, magic)
	b[4] = formatVersion
	if !r.expiresAt.IsZero() {
		b[5] = flagExpires
		binary.BigEndian.PutUint64(b[6:], uint64(r.expiresAt.Unix()))
		binary.BigEndian.PutUint32(b[14:], uint32(r.expiresAt.Nanosecond()))
	}
	binary.BigEndian.PutUint64(b[18:], r.version)
	binary.BigEndian.PutUint16(b[26:], uint16(len(r.key)))
	binary.BigEndian.PutUint64(b[28:], uint64(len(r.value)))
	b = append(b, r.key...)
	b = append(b, r.value...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable)), nil
}

// decodeFixed parses the fixed-size start of a file of size bytes. It
// returns the record without key and value, and the key's offset and length.
func decodeFixed(b []byte, size int64) (r record, keyLen int, err error) {
	if len(b) < fixedLen || string(b[:4]) != magic || b[4] != formatVersion || b[5]&^flagExpires != 0 {
		return record{}, 0, errCorrupt
	}
	if b[5]&flagExpires != 0 {
		nsec := binary.BigEndian.Uint32(b[14:])
		if nsec >= 1e9 {
			return record{}, 0, errCorrupt
		}
		r.expiresAt = time.Unix(int64(binary.BigEndian.Uint64(b[6:])), int64(nsec))
	}
	r.version = binary.BigEndian.Uint64(b[18:])
	keyLen = int(binary.BigEndian.Uint16(b[26:]))
	valueLen := binary.BigEndian.Uint64(b[28:])
	// Compare without overflow: size - fixed - key - crc must equal valueLen.
	if rest := size - fixedLen - int64(keyLen) - crcLen; rest < 0 || uint64(rest) != valueLen {
		return record{}, 0, errCorrupt
	}
	return r, keyLen, nil
}

// decode parses a whole file, checksum included. The value shares b's
// memory.
func decode(b []byte) (record, error) {
	r, keyLen, err := decodeFixed(b, int64(len(b)))
	if err != nil {
		return record{}, err
	}
	body, sum := b[:len(b)-crcLen], b[len(b)-crcLen:]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(sum) {
		return record{}, errCorrupt
	}
	r.key = string(body[fixedLen : fixedLen+keyLen])
	r.value = body[fixedLen+keyLen : len(body) : len(body)]
	return r, nil
}

// openRecord opens the record file at path for reading and returns its
// size. It never follows a symbolic link: a link, like a directory or any
// other file that is not regular, gives errNotRegular, so that it reads as
// a corrupt record.
func openRecord(path string) (*os.File, int64, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if errors.Is(err, errSymlink) {
		return nil, 0, errNotRegular
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// readRecord reads and parses the whole file at path.
func readRecord(path string) (record, error) {
	f, size, err := openRecord(path)
	if err != nil {
		return record{}, err
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return record{}, readErr(err)
	}
	return decode(b)
}

// readHeader reads the file at path up to the end of its key, without its
// value and without checking its checksum: enough to list and sweep.
func readHeader(path string) (record, error) {
	f, size, err := openRecord(path)
	if err != nil {
		return record{}, err
	}
	defer f.Close()
	var fixed [fixedLen]byte
	if _, err := io.ReadFull(f, fixed[:]); err != nil {
		return record{}, readErr(err)
	}
	r, keyLen, err := decodeFixed(fixed[:], size)
	if err != nil {
		return record{}, err
	}
	key := make([]byte, keyLen)
	if _, err := io.ReadFull(f, key); err != nil {
		return record{}, readErr(err)
	}
	r.key = string(key)
	return r, nil
}

// readErr turns a short read into errCorrupt.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errCorrupt
	}
	return err
}
