//go:build !unix

package filestore

import "io/fs"

// oNoFollow is zero where the platform has no O_NOFOLLOW: there, the store
// relies on the Lstat checks of its directories.
const oNoFollow = 0

// ownerOf reports false: this platform has no Unix owners and permission
// bits, so the store checks neither.
func ownerOf(fs.FileInfo) (uid int, ok bool) { return 0, false }
