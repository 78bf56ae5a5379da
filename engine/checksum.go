package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"osc/hooks"
)

// checksumChunkFactor: a checksum chunk covers this many copy chunks. It only
// reads, two aggregates per chunk, so larger chunks cost less per row.
const checksumChunkFactor = 10

// checksumTimeDivisor: a checksum chunk aims at this fraction of the copy's
// chunk time (Config.ChunkTarget). The pass ends when its slowest reader
// does, and the last chunks run while the other readers have nothing left:
// on average half a chunk's time is lost per reader. A chunk's fixed cost is
// a few milliseconds (its bound and two prepared statements), so shorter
// chunks cost little.
const checksumTimeDivisor = 4

// checksumChunkTarget is how long a checksum chunk aims to take.
func (m *Migration) checksumChunkTarget() time.Duration {
	return m.cfg.ChunkTarget / checksumTimeDivisor
}

// maxRecopyChunks bounds the chunks recopied while writes are blocked: more
// differences than that are no stray row but a defect (or a conversion the
// fingerprint does not reproduce), and recopying them would block writers
// for as long as a copy of that much of the table takes.
const maxRecopyChunks = 16

// MaxChecksumThreads bounds --checksum-threads and its socket command: each
// thread holds a connection in a snapshot transaction.
const MaxChecksumThreads = 64

// verify proves the shadow equal to the original right before the cut-over.
//
// A pass opens readers that see both tables at one moment: writes to the
// original are blocked, the applier drained (every change committed before the
// block is then in the shadow, and the original cannot change until the
// readers' snapshots are open), then the writers go on while the readers
// compare the chunks in key order without blocking anyone. A chunk that
// differs is narrowed to the parts of the copy's chunk size that differ,
// which are recopied at the start of the next pass, while writes are blocked
// and the applier drained again (nothing races with the recopy), and checked
// again in that pass's snapshot. The cut-over follows only a pass in which
// every chunk compared was equal; after ChecksumMaxRepairs passes that still
// found differences, osc aborts and names the first difference.
func (m *Migration) verify(ctx context.Context) error {
	if m.cfg.NoChecksum {
		m.log.Warn("checksum skipped (--checksum=false): the cut-over follows without comparing the shadow with the table")
		return nil
	}
	if err := m.hook(ctx, hooks.OnBeforeChecksum, hooks.Env{}); err != nil {
		return err
	}
	ck, err := m.d.NewChecksum()
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	defer func() {
		if err := ck.Close(); err != nil {
			m.log.Warn("checksum: close", "err", err)
		}
	}()
	prev := m.State()
	m.setState(StateChecksumming)
	start := time.Now()
	m.checksummed.Store(0)
	m.checksumStart.Store(start.UnixNano())
	var repair []ChecksumChunk // differed in the last pass: recopy, check again
	for pass := 1; ; pass++ {
		// Each attempt at the lock first catches up without it, so that
		// the drain under the lock is short.
		readers, err := ck.Open(ctx, m.checksumThreads()+1, m.readyToLock(), func(ctx context.Context) error {
			// Not the final restore (drainLocked): the checksum compares
			// the original with the shadow and the rows aside together,
			// and a value the original holds twice now may be given up
			// before the cut-over, whose lock alone decides.
			if err := m.drain(ctx); err != nil {
				return fmt.Errorf("catch up: %w", err)
			}
			if err := m.restore(ctx, false); err != nil {
				return fmt.Errorf("catch up: %w", err)
			}
			if len(repair) == 0 {
				return nil
			}
			if err := ck.Recopy(ctx, repair); err != nil {
				return fmt.Errorf("recopy %d chunk(s), the first %s: %w", len(repair), chunkText(repair[0]), err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("checksum pass %d: %w", pass, err)
		}
		if len(repair) > 0 {
			m.log.Info("checksum: recopied the chunks that differed", "chunks", len(repair))
		}
		var differ []ChecksumChunk
		found, rows, err := m.checksumPass(ctx, readers, repair)
		if err == nil && len(found) > 0 {
			differ, err = m.narrow(ctx, readers[0], found)
		}
		if err == nil && len(differ) > 0 {
			// Described in the snapshot the difference was seen in.
			var what string
			if what, err = readers[0].Diff(ctx, differ[0]); err == nil {
				if what == "" {
					what = "the fingerprints differ, the rows compared equal one by one"
				}
				m.log.Warn("checksum: chunks differ", "pass", pass, "chunks", len(differ),
					"first", chunkText(differ[0]), "difference", what)
				switch {
				case pass > m.cfg.ChecksumMaxRepairs:
					err = fmt.Errorf("checksum: %d chunk(s) of the shadow differ from the table after %d repair(s); first: %s: %s",
						len(differ), pass-1, chunkText(differ[0]), what)
				case len(differ) > maxRecopyChunks:
					err = fmt.Errorf("checksum: %d chunks of the shadow differ from the table, more than the %d osc recopies with writes blocked; first: %s: %s",
						len(differ), maxRecopyChunks, chunkText(differ[0]), what)
				}
			}
		}
		for _, r := range readers {
			if cerr := r.Close(); cerr != nil {
				m.log.Warn("checksum: close a reader", "err", cerr)
			}
		}
		if err != nil {
			return m.cause(ctx, fmt.Errorf("checksum pass %d: %w", pass, err))
		}
		if len(differ) == 0 {
			m.log.Info("checksum: the shadow equals the table", "pass", pass, "rows compared", rows,
				"elapsed", time.Since(start).Round(time.Millisecond).String())
			break
		}
		repair = differ
	}
	m.setState(prev)
	return m.hook(ctx, hooks.OnChecksumComplete, hooks.Env{})
}

// differing is a chunk that differs, with its rows in the original.
type differing struct {
	c    ChecksumChunk
	rows int64
}

// narrow splits each chunk that differs into chunks of the copy's size, in
// the reader's snapshot, and returns those that differ, in key order: the
// recopy, which blocks writers, then copies what the copy's chunks do.
// Bound counts the original's rows, so the chunk's k-th bound of size rows
// lies within it while k·size is less than its rows.
func (m *Migration) narrow(ctx context.Context, r ChecksumReader, differ []differing) ([]ChecksumChunk, error) {
	size := m.chunkSize()
	var out []ChecksumChunk
	for _, d := range differ {
		parts := []ChecksumChunk{}
		after := d.c.After
		for n := int64(size); n < d.rows; n += int64(size) {
			upto, err := r.Bound(ctx, after, size)
			if err != nil {
				return nil, fmt.Errorf("narrow %s: %w", chunkText(d.c), err)
			}
			if upto == nil {
				break
			}
			parts = append(parts, ChecksumChunk{After: after, Upto: upto})
			after = upto
		}
		if len(parts) == 0 {
			out = append(out, d.c)
			continue
		}
		parts = append(parts, ChecksumChunk{After: after, Upto: d.c.Upto})
		found := false
		for _, p := range parts {
			orig, shadow, err := r.Sum(ctx, p)
			if err != nil {
				return nil, fmt.Errorf("narrow %s: %w", chunkText(d.c), err)
			}
			if orig != shadow {
				out = append(out, p)
				found = true
			}
		}
		if !found {
			// The parts' sums make up the chunk's: only a hash collision
			// gets here. Recopy the whole chunk.
			out = append(out, d.c)
		}
	}
	return out, nil
}

// checksumPass compares chunks in the readers' snapshot: the given ones, or
// all of them in key order when chunks is nil. readers[0] bounds the chunks
// while the others compare them. It returns the chunks that differ, in key
// order, and the rows of the original compared.
func (m *Migration) checksumPass(ctx context.Context, readers []ChecksumReader, chunks []ChecksumChunk) ([]differing, int64, error) {
	if len(readers) < 2 {
		return nil, 0, fmt.Errorf("checksum: %d readers, want at least 2", len(readers))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type job struct {
		n    int // position in key order
		c    ChecksumChunk
		size int // the rows asked for (0: a given chunk)
	}
	// size is the next chunk's, dynamic as the copy's (chunksize.go).
	var size atomic.Int64
	size.Store(int64(checksumChunkFactor * m.chunkSize()))
	jobs := make(chan job)
	// produced is closed once every job was taken (jobs is unbuffered): a
	// worker idled by fewer threads then stops waiting.
	produced := make(chan struct{})
	var (
		mu     sync.Mutex
		differ = map[int]differing{}
		rows   int64
		wg     sync.WaitGroup
	)
	for i, r := range readers[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// Fewer threads asked for since the pass began: idle.
				for i >= m.checksumThreads() {
					select {
					case <-ctx.Done():
						return
					case <-produced:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
				j, ok := <-jobs
				if !ok {
					return
				}
				if err := m.waitThrottle(ctx); err != nil {
					cancel(err)
					return
				}
				start := time.Now()
				orig, shadow, err := r.Sum(ctx, j.c)
				if err != nil {
					cancel(fmt.Errorf("compare %s: %w", chunkText(j.c), err))
					return
				}
				if j.size > 0 && m.checksumChunkTarget() > 0 {
					next := nextChunkSize(j.size, int(orig.Rows), time.Since(start), m.checksumChunkTarget(), checksumChunkFactor*maxChunkSize)
					size.CompareAndSwap(int64(j.size), int64(next))
				}
				m.checksummed.Add(orig.Rows)
				mu.Lock()
				rows += orig.Rows
				if orig != shadow {
					differ[j.n] = differing{j.c, orig.Rows}
				}
				mu.Unlock()
			}
		}()
	}
	produce := func() error {
		defer close(jobs)
		send := func(j job) error {
			select {
			case jobs <- j:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if chunks != nil {
			for n, c := range chunks {
				if err := send(job{n: n, c: c}); err != nil {
					return err
				}
			}
			return nil
		}
		var after []any
		for n := 0; ; n++ {
			rows := int(size.Load())
			upto, err := readers[0].Bound(ctx, after, rows)
			if err != nil {
				return fmt.Errorf("chunk %d bound: %w", n+1, err)
			}
			if err := send(job{n, ChecksumChunk{After: after, Upto: upto}, rows}); err != nil {
				return err
			}
			if upto == nil {
				return nil
			}
			after = upto
		}
	}
	if err := produce(); err != nil {
		cancel(err)
	}
	close(produced)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, 0, err
	}
	order := slices.Sorted(maps.Keys(differ))
	out := make([]differing, len(order))
	for i, n := range order {
		out[i] = differ[n]
	}
	return out, rows, nil
}

// chunkText shows a chunk's key range for logs and errors.
func chunkText(c ChecksumChunk) string {
	show := func(k []any) string {
		parts := make([]string, len(k))
		for i, v := range k {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			parts[i] = fmt.Sprint(v)
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	switch {
	case c.After == nil && c.Upto == nil:
		return "the whole table"
	case c.After == nil:
		return "keys up to " + show(c.Upto)
	case c.Upto == nil:
		return "keys after " + show(c.After)
	}
	return "keys after " + show(c.After) + " up to " + show(c.Upto)
}
