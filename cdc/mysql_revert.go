package cdc

import (
	"context"
	"errors"
	"fmt"
)

// SwapPosition waits until the reader has read the cut-over's RENAME, at
// which it ends, and returns the binlog position right after it: a
// transaction boundary before which every change to the table went to the
// original, and after which every change to the table's name goes to the
// former shadow (the RENAME holds both names until it is binlogged). A
// revert window's reverse capture starts there.
func (s *MySQLSource) SwapPosition(ctx context.Context) (MySQLPos, error) {
	select {
	case <-s.started:
	default:
		return MySQLPos{}, errors.New("binlog source: SwapPosition before Start")
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return MySQLPos{}, fmt.Errorf("binlog source: wait for the cut-over's rename in the binlog: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.swapped.File == "" {
		return MySQLPos{}, fmt.Errorf("binlog source: the reader ended before the cut-over's rename: %w", s.err)
	}
	return MySQLPos{File: s.swapped.File, Pos: s.swapped.Pos}, nil
}
