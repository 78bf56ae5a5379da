package testdb

import (
	"bytes"
	"sync"
)

// Logs is a log sink (slog.NewTextHandler(&logs, nil)) that a test reads
// while the goroutines of what it runs still write to it.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
