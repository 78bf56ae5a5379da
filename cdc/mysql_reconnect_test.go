package cdc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"osc/internal/testdb"
)

// myCutProxy forwards TCP connections to a server. Armed, it cuts the
// server-to-client stream of the connection it is forwarding right after
// the n-th whole packet that contains mark (as a network failure would),
// and notes the end position (log_pos) of the binlog event in that packet.
type myCutProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	mark   []byte
	n      int
	cutPos uint32
	cut    chan struct{}
}

func myStartCutProxy(t *testing.T, target string) *myCutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &myCutProxy{ln: ln, target: target, cut: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *myCutProxy) arm(mark string, n int) {
	p.mu.Lock()
	p.mark, p.n = []byte(mark), n
	p.mu.Unlock()
}

func (p *myCutProxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	defer c.Close()
	defer s.Close()
	go io.Copy(s, c) //nolint:errcheck // the proxy ends when either side closes
	hdr := make([]byte, 4)
	for {
		if _, err := io.ReadFull(s, hdr); err != nil {
			return
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		body := make([]byte, n)
		if _, err := io.ReadFull(s, body); err != nil {
			return
		}
		if _, err := c.Write(append(append([]byte(nil), hdr...), body...)); err != nil {
			return
		}
		p.mu.Lock()
		cut := false
		if p.mark != nil && bytes.Contains(body, p.mark) {
			p.n--
			if p.n == 0 {
				// OK byte, then the event header: timestamp 4, type 1,
				// server id 4, size 4, log_pos 4.
				p.cutPos = binary.LittleEndian.Uint32(body[1+13 : 1+17])
				p.mark = nil
				cut = true
			}
		}
		p.mu.Unlock()
		if cut {
			close(p.cut)
			return
		}
	}
}

// TestMySQLCheckpointAfterReconnect: when the replication connection
// breaks, go-mysql reconnects at the end of the last event it read
// (BinlogSyncer.retrySync, prepareSyncPos(b.nextPos)), which may be in the
// middle of a transaction, even of a statement, and the server starts the
// new stream with a rotate event naming that position. Checkpoint must
// never return it: a resumed capture started there would get the rest of a
// statement without its table map and fail to decode it (and the resumed
// run would then fail and drop everything the killed run did).
func TestMySQLCheckpointAfterReconnect(t *testing.T) {
	db, cfg := myOpenTestDB(t)
	p := myTestTable(t, db, "rvmy_reconn")
	proxy := myStartCutProxy(t, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port))
	pcfg := cfg
	addr := proxy.ln.Addr().(*net.TCPAddr)
	pcfg.Host, pcfg.Port = "127.0.0.1", uint16(addr.Port)
	s := myStart(t, db, pcfg, p)

	// One statement, many rows events (binlog_row_event_max_size): the
	// connection breaks after the second.
	proxy.arm("rvmyQ", 2)
	var vals []string
	for i := range 5000 {
		vals = append(vals, fmt.Sprintf("(%d, 'rvmyQ%014d')", i, i))
	}
	testdb.ExecMySQL(t, db, "INSERT INTO tbl_mysqldata_rvmy_reconn VALUES "+strings.Join(vals, ", "))
	select {
	case <-proxy.cut:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not cut the stream")
	}
	file, _, _, err := s.showStatus(context.Background(), "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	inside := MySQLPos{File: file, Pos: proxy.cutPos}.String()

	// Apply (ack) the changes one by one, as the engine may, noting every
	// checkpoint it could save.
	ckpts := map[string]bool{}
	for range 5000 {
		c := myNext(t, s, 1)[0]
		s.Ack(c.Pos)
		ckpts[s.Checkpoint(nil)] = true
	}
	if ckpts[inside] {
		// Show what a resume from it does.
		from, err := ParseMySQLPos(inside)
		if err != nil {
			t.Fatal(err)
		}
		cfg2 := cfg
		cfg2.ServerID++
		cfg2.From = from
		s2 := myStart(t, db, cfg2, p)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := s2.Next(ctx, 5000)
		t.Errorf("the checkpoint was %s, inside the INSERT statement (the reconnect's position); a capture restarted there: %d changes, %.300v",
			inside, len(got), err)
	}
}
