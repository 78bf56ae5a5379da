package throttle

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memProbe is a Probe whose measurements the test sets (the SQL probes are
// tested against the sandbox in mysql_test.go and postgres_test.go).
type memProbe struct {
	mu        sync.Mutex
	lags      []ReplicaLag
	load      map[string]int64
	query     int64
	queryErr  error
	heartbeat atomic.Int64
}

func (p *memProbe) Heartbeat(context.Context, time.Time) error { p.heartbeat.Add(1); return nil }
func (p *memProbe) ReplicaLags(context.Context, []string) []ReplicaLag {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ReplicaLag(nil), p.lags...)
}
func (p *memProbe) Load(_ context.Context, names []string) ([]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int64, len(names))
	for i, n := range names {
		v, ok := p.load[n]
		if !ok {
			return nil, errors.New(n + ": unknown")
		}
		out[i] = v
	}
	return out, nil
}
func (p *memProbe) Query(context.Context, string) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.query, p.queryErr
}
func (p *memProbe) RetainedWAL(context.Context) (int64, bool, error) { return 0, false, nil }
func (p *memProbe) Close() error                                     { return nil }

func (p *memProbe) set(fn func(p *memProbe)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

// settingsBox holds settings a test changes while the throttler runs.
type settingsBox struct {
	mu sync.Mutex
	s  Settings
}

func (b *settingsBox) get() Settings {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s
}

func (b *settingsBox) update(th *Throttler, fn func(*Settings)) {
	b.mu.Lock()
	fn(&b.s)
	b.mu.Unlock()
	th.Poke()
}

// start runs a throttler until the test ends; its Run error goes to errc.
func start(t *testing.T, p Probe, box *settingsBox) (*Throttler, chan error) {
	t.Helper()
	th := New(p, box.get, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- th.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			// nil once cancelled; a test that expected ErrCriticalLoad
			// puts it back.
			if err != nil && !errors.Is(err, ErrCriticalLoad) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return th, errc
}

// eventually waits up to 3 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func reasonHas(th *Throttler, s string) func() bool {
	return func() bool { st := th.Status(); return st.Throttled && strings.Contains(st.Reason(), s) }
}

func TestThrottlerFlagFilesAndManual(t *testing.T) {
	dir := t.TempDir()
	flag, extra := filepath.Join(dir, "flag"), filepath.Join(dir, "extra")
	box := &settingsBox{s: Settings{FlagFile: flag, AdditionalFlagFile: extra}}
	th, _ := start(t, &memProbe{}, box)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := th.Wait(ctx); err != nil {
		t.Fatalf("Wait with nothing throttling: %v", err)
	}
	if err := os.WriteFile(extra, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "additional flag file to throttle", reasonHas(th, "flag-file "+extra))
	released := make(chan error, 1)
	go func() { released <- th.Wait(ctx) }()
	select {
	case err := <-released:
		t.Fatalf("Wait returned while throttled: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	box.update(th, func(s *Settings) { s.Manual = true })
	eventually(t, "manual throttle", reasonHas(th, "commanded by user"))
	os.Remove(extra)
	eventually(t, "flag file reason to go", func() bool { return !strings.Contains(th.Status().Reason(), "flag-file") })
	if !th.Status().Throttled {
		t.Fatal("manual throttle ended with the flag file")
	}
	box.update(th, func(s *Settings) { s.Manual = false })
	select {
	case err := <-released:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Wait did not return once released")
	}
	// Wait gives up with its context.
	box.update(th, func(s *Settings) { s.Manual = true })
	eventually(t, "manual throttle", reasonHas(th, "commanded by user"))
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := th.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait under a short context: %v", err)
	}
}

func TestThrottlerLagLoadQuery(t *testing.T) {
	p := &memProbe{load: map[string]int64{"Threads_running": 3}, lags: []ReplicaLag{{Name: "r1:3306", Lag: 100 * time.Millisecond}}}
	box := &settingsBox{s: Settings{MaxLag: time.Second, MaxLoad: Thresholds{{"Threads_running", 10}}, Query: "SELECT 0"}}
	th, _ := start(t, p, box)
	change := func(fn func(*memProbe)) { p.set(fn); th.Poke() }
	eventually(t, "first decision", func() bool { st := th.Status(); return st.LagKnown && !st.Throttled })
	if st := th.Status(); st.Lag != 100*time.Millisecond {
		t.Errorf("lag %v", st.Lag)
	}
	if p.heartbeat.Load() == 0 {
		t.Error("no heartbeat written while lag is checked")
	}
	change(func(p *memProbe) { p.lags = append(p.lags, ReplicaLag{Name: "r2:3306", Lag: 2500 * time.Millisecond}) })
	eventually(t, "lag throttle", reasonHas(th, "replica-lag r2:3306 2.5s > 1s"))
	change(func(p *memProbe) { p.lags = []ReplicaLag{{Name: "r2:3306", Err: errors.New("connection refused")}} })
	eventually(t, "unreadable replica throttles", reasonHas(th, "replica r2:3306 unreadable: connection refused"))
	change(func(p *memProbe) { p.lags = nil })
	eventually(t, "release", func() bool { return !th.Status().Throttled })

	change(func(p *memProbe) { p.load["Threads_running"] = 10 })
	eventually(t, "max-load", reasonHas(th, "max-load Threads_running=10 >= 10"))
	box.update(th, func(s *Settings) { s.MaxLoad = Thresholds{{"Threads_running", 11}} })
	eventually(t, "raised max-load releases", func() bool { return !th.Status().Throttled })

	change(func(p *memProbe) { p.query = 2 })
	eventually(t, "throttle-query", reasonHas(th, "throttle-query returned 2"))
	change(func(p *memProbe) { p.query, p.queryErr = 0, errors.New("syntax error") })
	eventually(t, "failing throttle-query throttles", reasonHas(th, "throttle-query: syntax error"))
	box.update(th, func(s *Settings) { s.Query = "" })
	eventually(t, "release", func() bool { return !th.Status().Throttled })
}

func TestThrottlerHTTP(t *testing.T) {
	var code atomic.Int32
	code.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			t.Errorf("method %s", r.Method)
		}
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	box := &settingsBox{s: Settings{HTTP: srv.URL}}
	th, _ := start(t, &memProbe{}, box)
	eventually(t, "http throttle", reasonHas(th, "throttle-http "+srv.URL+": 503 Service Unavailable"))
	code.Store(http.StatusOK)
	box.update(th, func(*Settings) {})
	eventually(t, "release", func() bool { return !th.Status().Throttled })
	srv.Close()
	box.update(th, func(*Settings) {})
	eventually(t, "unreachable URL throttles", reasonHas(th, "throttle-http: "))
}

func TestThrottlerCriticalLoad(t *testing.T) {
	// At once.
	p := &memProbe{load: map[string]int64{"Threads_running": 50}}
	_, errc := start(t, p, &settingsBox{s: Settings{CriticalLoad: Thresholds{{"Threads_running", 40}}}})
	select {
	case err := <-errc:
		if !errors.Is(err, ErrCriticalLoad) || !strings.Contains(err.Error(), "Threads_running=50 >= 40") {
			t.Errorf("Run: %v", err)
		}
		errc <- err // for the cleanup
	case <-time.After(3 * time.Second):
		t.Fatal("critical load did not abort")
	}

	// With a second check: a spike that passes does not abort; one that
	// stays does.
	p2 := &memProbe{load: map[string]int64{"Threads_running": 50}}
	box := &settingsBox{s: Settings{CriticalLoad: Thresholds{{"Threads_running", 40}}, CriticalLoadInterval: time.Second}}
	th, errc2 := start(t, p2, box)
	eventually(t, "critical load throttles while pending", reasonHas(th, "critical-load Threads_running=50 >= 40"))
	p2.set(func(p *memProbe) { p.load["Threads_running"] = 5 })
	th.Poke()
	select {
	case err := <-errc2:
		t.Fatalf("aborted on a spike: %v", err)
	case <-time.After(1200 * time.Millisecond):
	}
	p2.set(func(p *memProbe) { p.load["Threads_running"] = 45 })
	th.Poke()
	select {
	case err := <-errc2:
		if !errors.Is(err, ErrCriticalLoad) || !strings.Contains(err.Error(), "met again after 1s") {
			t.Errorf("Run: %v", err)
		}
		errc2 <- err
	case <-time.After(3 * time.Second):
		t.Fatal("sustained critical load did not abort")
	}
}
