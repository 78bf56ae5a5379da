package checksum

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// sumsHash folds a chunk's exact sums, as the server's decimal text, into
// the 64 bits of engine.ChecksumSum.Hash: the first 64 bits of the SHA-256
// of each sum's length and text. Two chunks' hashes are then equal when
// their sums are, and otherwise with probability 2^-64.
func sumsHash(sums ...[]byte) uint64 {
	h := sha256.New()
	for _, s := range sums {
		h.Write(strconv.AppendInt(nil, int64(len(s)), 10))
		h.Write([]byte{':'})
		h.Write(s)
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}
