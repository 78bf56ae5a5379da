// Package checksum compares the shadow table with the original before the
// cut-over, one implementation per database of engine.Checksum: a brief
// write lock on the original while the engine drains the applier, snapshot
// readers opened on both tables at that moment, and chunk fingerprints
// computed by the server (each mapped column converted as the copy converts
// it), so that the engine can recopy a chunk that differs and check it again.
//
// With a new unique key the shadow's side of a chunk is the shadow and the
// table of rows aside together (a UNION ALL over the chunk's key range,
// only when a reader's snapshot shows rows aside): count, sums and XOR add
// up over the union, so the odds below are those of one table.
//
// # What a fingerprint misses
//
// Within one side of a chunk no two rows are alike (the key is unique), so
// what can cancel out are changes to several rows. Changes that come in
// pairs are the likely ones: a conversion or replay defect writes the same
// wrong value into every row that held one value; changes applied to the
// wrong keys swap two rows' values; a row is missing and another is extra.
//
// MySQL/MariaDB: a chunk's fingerprint is its count and the exact sums of c
// and c² over its rows, c the CRC32 of the row's unambiguous rendering
// (mysql_canon.go), folded into 64 bits by SHA-256 (sumsHash: 2^-64).
//
//   - A different count is always found.
//   - One row changed (or one missing and another extra): found unless the
//     new rendering's CRC32 equals the old one's; never when both renderings
//     have the same length and differ within 32 consecutive bits (a CRC of
//     degree 32 finds every such burst), otherwise with probability 2^-32.
//   - Two rows changed, whatever the change (the same one to both, a swap):
//     c1+c2 and c1²+c2² determine {c1, c2}, so the sums stay only when the
//     two new rows' CRCs are the old rows' CRCs: a collision of CRC32s as
//     above (2^-32), not a cancellation.
//   - An odd number of rows changed by the same bits: always found (their
//     CRCs change by the same bits E; at E's lowest bit the changes to Σc
//     add up to an odd multiple of it).
//   - More rows: no systematic case is known; both sums staying is a
//     coincidence of two sums of large numbers, below 2^-32.
//
// CRC32 is cheap (with the rendering, a third of the MD5 per row this
// replaced), but it is affine over XOR: renderings of one length changed by
// the same bits change their CRCs by the same bits. So BIT_XOR(CRC32(row))
// (pt-table-checksum's, Spirit's) misses, with certainty, the same change
// to an even number of rows and a swap of two values of one length;
// SUM(CRC32(row)) alone misses them when the rows' CRCs differ at every bit
// the change flips (about one pair in 2^16). A second CRC does not help:
// CRC32C and a salted CRC32(CONCAT(row, salt)) are affine too, with the same
// cancellations. mysql_cancel_test.go has data that both miss. The MD5 had
// 2^-64 against any difference; this has 2^-32 against a random change of
// one row, as pt-table-checksum and Spirit have, and certainty against
// short ones.
//
// PostgreSQL: count and BIT_XOR of the rows' 64-bit hashes. A row's hash
// chains its columns' (pgRowHash): h_i = H_i(v_i, h_(i-1)), H_i the
// extended hash function of the column's type (Jenkins' lookup3, whose
// seed enters its state before the value), from a mask of the row's NULLs
// and negative numbers. Every bit of a row's hash depends on every column
// and its position, with no linear structure for changes to cancel along:
// hash_record_extended(row), which this replaced (at about half its cost),
// added the fields' hashes up (31·h + field hash), so that the same change
// to two rows added the same D to both rows' hashes, and it took a numeric
// by its digits alone, so that 5.00 and -5.00 hashed alike.
//
//   - A different count is always found.
//   - One row changed (or one missing and another extra): found unless the
//     new row's hash equals the old one's, about 2^-64; but the hash of an
//     8-byte integer (bigint, timestamp, time) XORs its two halves into 32
//     bits first (the high half complemented when negative), so a change
//     of such a value that flips the same bits in both halves (a positive
//     value's halves swapped) is never found by that column, and another
//     change confined to it is missed with probability 2^-32.
//   - Several rows changed, whatever the change (the same one to all, a
//     swap of values between them): their old and new hashes XOR to zero
//     with probability about 2^-64 (the changes to the hashes depend on
//     each row's other columns, its key among them), bar the folds above.
//   - A numeric's and a float's hash ignore the sign (and the float's
//     equates -0 and 0): the mask holds it. A NULL is hashed as the type's
//     zero (the empty string, 0, the epoch) with its mask bit set.
//
// A type whose hash is not exact, or that SQL cannot call on the type's
// values (numeric without a scale, jsonb, char(n), arrays, dates, bytea…),
// is hashed by its text form, which differs wherever the values do.
package checksum

import (
	"fmt"
	"log/slog"
	"time"
)

// Options are the checksum's lock settings, the cut-over's.
type Options struct {
	// LockTimeout bounds each attempt's wait for the write lock on the
	// original, and then how long the engine may keep writes blocked
	// (draining, recopying); Retries is the number of attempts in all.
	LockTimeout time.Duration
	Retries     int
	Log         *slog.Logger
	// Unlocked opens the readers without the lock and without calling
	// Open's blocked, for two tables no migration is writing (osc verify):
	// PostgreSQL's readers still share one snapshot; MySQL's each start
	// their own consistent snapshot of both tables, at moments apart by
	// the time it takes to open them.
	Unlocked bool
	// PanicOnWarnings (MySQL) fails a recopy that made the server warn
	// (--panic-on-warnings, table.MySQLWarnings).
	PanicOnWarnings bool
}

// defaults fills what was left zero: the cut-over's defaults, one attempt,
// no log.
func (o Options) defaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 3 * time.Second
	}
	o.Retries = max(o.Retries, 1)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// readers returns how many of the n readers asked for the pool can hold at
// once besides the lock's connection and one for the applier and the drain
// (which run while writes are blocked and must not wait for a connection),
// and logs when it is fewer. The engine needs two: one bounds chunks, one
// compares them.
func readers(n, pool int, log *slog.Logger) (int, error) {
	most := pool - 2
	if most < 2 {
		return 0, fmt.Errorf("checksum: a pool of %d connections cannot hold two snapshot readers besides the lock and the applier", pool)
	}
	if n > most {
		log.Warn("checksum: fewer threads than asked for: the connection pool holds no more readers", "readers asked", n, "readers", most, "pool", pool)
		return most, nil
	}
	return n, nil
}
