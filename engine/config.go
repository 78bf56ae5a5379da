package engine

import "time"

// Config is what the user asked of one migration, whatever the database.
type Config struct {
	Schema string // MySQL database, PostgreSQL schema ("" = public)
	Table  string
	Alter  string // the ALTER TABLE clauses, without "ALTER TABLE t"

	Execute bool // false: dry run (create and alter the shadow, report, drop)

	// Strategy is how the --alter is carried out: StrategyCopy (or ""),
	// StrategyAuto or StrategyNative (see native.go).
	Strategy string

	ChunkSize int // rows per copy chunk (the first, when ChunkTarget is set)
	// ChunkTarget, when set, makes the copy's chunk size dynamic: each
	// chunk aims at taking this long (chunksize.go).
	ChunkTarget time.Duration
	// CopyThreads is the number of chunks copied at once, each its own
	// range of keys (copyrange.go).
	CopyThreads  int
	DMLBatchSize int // changes per apply transaction (up to maxBatchGrowth times as many while a backlog lasts)

	CutOverLockTimeout time.Duration // per attempt
	CutOverRetries     int
	// Retries bounds the attempts of a chunk copy or an apply batch that
	// fails transiently (a deadlock, a lock wait timeout); 0: retryAttempts.
	Retries       int
	OkToDropTable bool // drop the old table after cut-over

	// PostponeCutOverFlagFile: while this file exists, the migration keeps
	// applying changes and does not cut over.
	PostponeCutOverFlagFile string

	StatusInterval time.Duration

	// PreflightSample is how long the preflight report samples the writes
	// on the table (0: it does not).
	PreflightSample time.Duration

	// ExactRowCount counts the original's rows (a full scan) for the
	// status's total and ETA instead of the statistics' estimate;
	// ConcurrentRowCount counts while the copy runs rather than before it
	// starts (gh-ost's --exact-rowcount and --concurrent-rowcount).
	ExactRowCount      bool
	ConcurrentRowCount bool

	// NoChecksum skips the comparison of the shadow with the original
	// before the cut-over (--checksum=false).
	NoChecksum bool
	// ChecksumThreads is the number of chunks compared at once.
	ChecksumThreads int
	// ChecksumMaxRepairs is how many times chunks that differ are recopied
	// and compared again before osc gives up (0: give up at the first
	// difference).
	ChecksumMaxRepairs int

	// NoCheckpoint turns checkpoints off (--checkpoint=false): a killed run
	// then cannot be resumed, and PostgreSQL's replication slot is
	// temporary.
	NoCheckpoint bool
	// CheckpointInterval is how often the checkpoint is saved.
	CheckpointInterval time.Duration
	// Resume continues the run a killed osc left (its shadow, capture
	// position and copy watermark) instead of starting afresh.
	Resume bool
	// ResumeMaxAge refuses a checkpoint older than this (0: any age).
	ResumeMaxAge time.Duration
	// InitiallyDropShadow drops what a dead run of this migration left
	// (shadow, bookkeeping, replication slot and publication) before
	// starting afresh (--initially-drop-ghost-table).
	InitiallyDropShadow bool
	// InitiallyDropOld drops the old table a previous migration of this
	// table kept (--initially-drop-old-table).
	InitiallyDropOld bool
	// RevertWindow, when positive, keeps the old table current for this
	// long after the cut-over, so that the operator can swap the tables
	// back (revert.go).
	RevertWindow time.Duration
	// Version is osc's version: a checkpoint saved by another version is
	// not resumed.
	Version string

	// Control is the operator's: throttling, the interactive socket, hooks
	// and the status output (see control.go).
	Control Control
}

// Defaults fills zero fields with osc's defaults.
func (c *Config) Defaults() {
	if c.ChunkSize <= 0 {
		c.ChunkSize = 1000
	}
	if c.CopyThreads <= 0 {
		c.CopyThreads = 1
	}
	c.CopyThreads = min(c.CopyThreads, MaxCopyThreads)
	if c.DMLBatchSize <= 0 {
		c.DMLBatchSize = 100
	}
	if c.CutOverLockTimeout <= 0 {
		c.CutOverLockTimeout = 3 * time.Second
	}
	if c.CutOverRetries <= 0 {
		c.CutOverRetries = 60
	}
	if c.ChecksumThreads <= 0 {
		c.ChecksumThreads = 2
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 5 * time.Second
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = 5 * time.Second
	}
}
