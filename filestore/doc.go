// Package filestore is a [kvsession.Store] that keeps each record in a file
// of one directory, with the standard library only: the embedded default for
// a single machine that must keep its sessions across restarts. Several
// processes on that machine may share the directory.
//
//	store, err := filestore.New("/var/lib/myapp/sessions", nil)
//
// # Layout on disk
//
// [New] creates the directory with mode 0700 if it does not exist, and its
// subdirectories with mode 0700; every file the store creates has mode 0600.
// [New] refuses (with an error wrapping [ErrUnsafeDir]) a directory that
// already exists but is unsafe; see Trust below. The directory holds:
//
//	k-<hex of the key>         the record of a key of at most 100 bytes
//	h-<hex of SHA-256(key)>    the record of a longer key
//	.tmp-<random digits>       a record being written
//	users/<user>/<key>         the user index: one entry per (user, key),
//	                           both named as records are
//	locks/00 … locks/ff        lock files, empty (platforms with flock(2))
//
// Names use lower-case letters, digits, '.' and '-' only. No key, whatever
// its bytes ("../x", "a/b", NUL, "CON"), can therefore name a file outside
// the directory, and keys that differ only in case ("A" and "a") stay
// distinct on case-insensitive file systems. A hashed name keeps the file
// name short for any key; the file still holds the key itself, so
// [Store.Keys] reports it and a read checks it. Temp files never share a
// name with a record, and a sweep recognises them.
// Files with other names are not the store's, and it leaves them alone.
//
// # File format
//
// A record file is a 36-byte header, the key, the value and a checksum, all
// integers big-endian:
//
//	magic        4 bytes  "kvsf"
//	format       1 byte   1
//	flags        1 byte   bit 0: the record expires
//	expiry       8+4      Unix seconds and nanoseconds (zero when it does not)
//	version      8 bytes  random, never 0
//	key length   2 bytes
//	value length 8 bytes
//	key, value
//	checksum     4 bytes  CRC-32C of everything before it
//
// A user index entry has the same format with an empty value and version 0.
// A file whose magic, format, flags, lengths or checksum are wrong is
// corrupt: it reads as missing (the error wraps both [kvsession.ErrNotFound]
// and [kvsession.ErrCorrupt], so the session manager reports it as
// EventCorruptRecord), and so does a file that holds another key than
// its name says; a conditional write on it fails as on a missing
// record, [Store.Set] replaces it, and [Store.DeleteExpired] removes it when
// its header is the part that is damaged. No content can make the store
// panic or allocate more than the file's size.
//
// # Trust
//
// Whoever can write the directory can rewrite any record (turn their
// session into another user's) or plant symbolic links. So [New] accepts
// the directory, users/ and locks/ only if each is a real directory (not a
// symbolic link), owned by the process's effective user, and not writable
// by its group or by others; otherwise it fails with an error wrapping
// [ErrUnsafeDir] that names the directory, its owner's uid and its mode.
// Mode 0700 is what New creates; 0755 is accepted too. The store's directory
// itself may be a symbolic link if the link is owned by the process's user
// or by root: the directory it points to is checked. The checks do not
// climb to the parent directories: they must be trusted as well.
//
// The store never follows a symbolic link to a file: it opens records,
// index entries, temp files and lock files with O_NOFOLLOW, and checks each
// user directory with Lstat before it reads or writes inside it. A symbolic
// link (or anything but a regular file) at a record or index entry path
// reads as a corrupt record: missing to reads and conditional writes,
// replaced by a write (Set, AddUserKey), removed by a sweep; its target is
// never read nor written.
// One at a lock file path, or a user directory that fails the checks
// above, makes the writes that need it fail with an error, until it is
// removed. Platforms without Unix owners and permissions (Windows, Plan 9,
// WebAssembly) skip the owner and mode checks and lack O_NOFOLLOW; they
// keep the Lstat checks.
//
// # Read-only
//
// With [Options.ReadOnly], for tools that inspect sessions, [New] creates
// nothing: it fails with an error wrapping [ErrNotStore] if the directory
// is missing or lacks users/ and locks/ (it is not a store), every write
// fails with an error wrapping [ErrReadOnly], and [Store.UserKeys] leaves
// the expired entries it meets. Reads take no lock, so a read-only Store
// needs no write permission at all.
//
// # Atomicity and durability
//
// Every write goes to a new temp file in the directory, which is synced,
// renamed over the record file, and the directory synced in turn. A reader
// opens either the old file or the new one, so it never sees a torn record,
// and a crash leaves either record plus at worst a stray temp file. Deletes
// sync the directory before they return, so a record that was deleted (a
// destroyed session) stays deleted after a crash or power loss. Reads take
// no lock.
//
// # Locking and several processes
//
// Every write of a key (Set, Delete, CompareAndSwap, CompareAndDelete,
// Touch, the user index writes, and each removal by a sweep) holds that
// key's lock from its read to its rename. The locks are 256 lock files,
// chosen by a hash of the record's file name, each taken with flock(2) and,
// in front of it, an in-process lock per Store: flock(2) locks belong to an
// open file, and the in-process lock keeps waiting goroutines out of system
// calls. A write waiting for a lock that another process holds polls for
// it, and gives up when its context ends.
//
// So several Stores on one directory, in one process or in several
// processes of one machine, see each other's writes at once, and
// [Store.CompareAndSwap], [Store.CompareAndDelete] and [Store.Touch] are
// atomic among all of them: no update is lost, and no write resurrects a
// deleted record. A conflict of [Store.CompareAndSwap] returns the record it
// read under the lock in a [*kvsession.ConflictError]. Versions are random
// 64-bit numbers from crypto/rand, so they do not repeat for a key across
// deletes, restarts and processes, without any shared counter.
//
// Where flock(2) is missing (Windows, Solaris, AIX, Plan 9, WebAssembly),
// only the in-process lock exists: one Store, in one process, may use a
// directory. Sharing it there risks lost updates and resurrected records.
//
// # Expiry
//
// Expiry is decided by [Options.Now] (default time.Now) when a record is
// read: an expired record reads as missing at once, and a zero expiry means
// never. Its file stays until [Store.DeleteExpired] removes it: call it
// periodically, for example through the session manager's
// [kvsession.Manager.CleanupEvery]. A sweep reads the directory 256 entries
// at a time and locks each record only to remove it, so writers are not
// held up; it also removes expired user index entries, user directories
// left empty, and temp files left more than a minute ago by a writer that
// died (judged by the real clock and the file's modification time, whatever
// Options.Now says). [Store.UserKeys] drops the expired entries it meets.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract and both optional
// capabilities, [kvsession.Lister] and [kvsession.ExpiredDeleter].
//
// # Caveats
//
//   - Each write costs two fsyncs (file and directory). Writers of one key
//     take turns; writers of different keys take turns only when their keys
//     share one of the 256 locks.
//   - [Store.Keys] reports the key of every record file, expired ones too
//     until a sweep removes them; callers that care check each with Get.
//   - A directory holds one file per live session; most file systems handle
//     millions, but [Store.Keys] and [Store.DeleteExpired] read them all.
//   - Use a local file system. Network file systems (NFS, SMB) may not honour
//     flock(2), renames or fsync the way this package needs.
//   - Error messages name the store's directory but never a record's file:
//     file names encode keys, and keys may be session IDs.
//   - On Windows, a write may fail while another goroutine has the same
//     record file open for reading, as Windows refuses to replace open files.
//   - Keys longer than 65535 bytes are refused; the contract allows 250.
package filestore
