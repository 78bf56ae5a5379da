package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"osc/hooks"
	"osc/throttle"
)

// commander answers the operator's commands: a migration, or a backfill
// (backfill.go).
type commander interface {
	command(line string) (string, error)
}

// server answers the operator on a unix socket (and optionally a TCP port)
// with gh-ost's text protocol: one command line per connection, a reply,
// then the connection closes.
type server struct {
	cmd      commander
	log      *slog.Logger
	path     string // the unix socket, removed on close
	unix     net.Listener
	tcp      net.Listener
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	conns    map[net.Conn]struct{}
	stopOnce sync.Once
}

// commandTimeout bounds reading a command and running it.
const commandTimeout = 30 * time.Second

// serve listens where Control says for the migration's commands.
func (m *Migration) serve() (*server, error) { return serve(m.cfg.Control, m, m.log) }

// serve listens where k says and answers with cmd.
func serve(k Control, cmd commander, log *slog.Logger) (*server, error) {
	s := &server{cmd: cmd, log: log, conns: map[net.Conn]struct{}{}}
	if k.ServeSocketFile != "" {
		l, err := listenUnix(k.ServeSocketFile)
		if err != nil {
			return nil, err
		}
		s.unix, s.path = l, k.ServeSocketFile
		log.Info("serving interactive commands", "socket", k.ServeSocketFile,
			"try", "osc ctl --socket "+k.ServeSocketFile+" help")
	}
	if k.ServeTCPPort != 0 {
		addr := k.ServeTCPAddress
		if addr == "" {
			addr = "127.0.0.1"
		}
		l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(k.ServeTCPPort)))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("serve-tcp-port: %w", err)
		}
		s.tcp = l
		log.Info("serving interactive commands", "tcp", l.Addr().String())
	}
	for _, l := range []net.Listener{s.unix, s.tcp} {
		if l != nil {
			s.wg.Go(func() { s.accept(l) })
		}
	}
	return s, nil
}

// listenUnix binds a unix socket at path readable and writable by its owner
// only. The socket is bound in a private directory, given mode 0600, then
// renamed into place, so that it never exists with wider permissions. A
// socket left by an osc that died is replaced; one that answers is refused.
func listenUnix(path string) (net.Listener, error) {
	if len(path) > 107 {
		return nil, fmt.Errorf("serve-socket-file %s: longer than a unix socket path may be (107 bytes)", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("serve-socket-file %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("serve-socket-file %s is served by another osc (is this table being migrated already?)", path)
		}
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".osc-sock-")
	if err != nil {
		return nil, fmt.Errorf("serve-socket-file: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("serve-socket-file %s: %w", path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("serve-socket-file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return nil, fmt.Errorf("serve-socket-file %s: %w", path, err)
	}
	return l, nil
}

func (s *server) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors and the like: try again shortly.
			s.log.Warn("interactive socket", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.closeMu.Lock()
		if s.closed {
			s.closeMu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.closeMu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.closeMu.Lock()
			delete(s.conns, c)
			s.closeMu.Unlock()
		}()
	}
}

func (s *server) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(commandTimeout)) // fails only on a closed conn, whose read then fails
	line, err := bufio.NewReader(io.LimitReader(c, 64<<10)).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return
	}
	reply, err := s.cmd.command(strings.TrimSpace(line))
	if err != nil {
		reply = "error: " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n"
	}
	_, _ = io.WriteString(c, reply) // a client that went away has no one to tell
}

// close stops serving, waits for the commands being answered and removes the
// socket file.
func (s *server) close() {
	s.stopOnce.Do(func() {
		s.closeMu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.SetDeadline(time.Now()) // a closed conn needs no waking
		}
		s.closeMu.Unlock()
		for _, l := range []net.Listener{s.unix, s.tcp} {
			if l != nil {
				l.Close()
			}
		}
		s.wg.Wait()
		if s.path != "" {
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("remove the socket file", "file", s.path, "err", err)
			}
		}
	})
}

const helpText = `available commands:
status                               # print the status line and the settings in force
sup                                  # print the status line
coordinates                          # print the change capture position
chunk-size=<rows>                    # set the copy's chunk size
dml-batch-size=<changes>             # set the number of changes applied per transaction
copy-threads=<n>                     # set the number of chunks the copy runs at once (each its own range of keys)
checksum-threads=<n>                 # set the number of chunks the checksum compares at once (more than at its start: from its next pass)
nice-ratio=<ratio>                   # sleep ratio × each chunk's duration after it (0: none, 1: copy half as fast)
max-lag-millis=<ms>                  # throttle while a replica lags more (0: do not check)
throttle-control-replicas=<list>     # replicas to watch besides those discovered (host:port,...; PostgreSQL also DSNs)
max-load=<name=value,...>            # throttle while a load metric reaches its threshold
critical-load=<name=value,...>       # abort the migration when a load metric reaches its threshold
throttle-query=<query>               # throttle while the query returns a value > 0 (empty: none)
throttle-http=<url>                  # throttle unless a HEAD of the URL answers 200 (empty: none)
throttle                             # throttle by hand
no-throttle                          # end throttling by hand (other reasons may still throttle)
postpone                             # create the postpone flag file: the cut-over waits
unpostpone                           # remove the postpone flag file: cut over when ready (cut-over=<table> alike)
panic                                # abort now and clean up, as Ctrl-C
revert                               # in the revert window: swap the tables back (refused, naming the rows, when it cannot be exact)
finish                               # in the revert window: end it; the table stays migrated
help                                 # this message
- "name=?" prints the value of a setting instead of changing it.
`

// parseCommand splits an operator command, name or name=value (the value
// may be a quoted Go string); query is name=?, which asks for a setting.
func parseCommand(line string) (name, arg string, hasArg, query bool, err error) {
	name, arg, hasArg = strings.Cut(line, "=")
	name, arg = strings.TrimSpace(name), strings.TrimSpace(arg)
	if u, err := strconv.Unquote(arg); err == nil {
		arg = u
	}
	if name == "" {
		return "", "", false, false, errors.New("empty command; try help")
	}
	return name, arg, hasArg, hasArg && arg == "?", nil
}

// command runs one operator command and returns the reply. An error changes
// nothing.
func (m *Migration) command(line string) (string, error) {
	name, arg, hasArg, query, err := parseCommand(line)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	if err := m.hook(ctx, hooks.OnInteractiveCommand, hooks.Env{Command: line}); err != nil {
		return "", err
	}
	reply, err := m.runCommand(ctx, name, arg, hasArg, query)
	if err == nil && !query {
		switch name {
		case "help", "status", "info", "sup", "coordinates":
		case "throttle-control-replicas": // connection strings may hold passwords
			m.log.Info("operator command", "command", name+"="+m.displayReplicas(m.ctl.throttleSettings().Replicas))
		default:
			m.log.Info("operator command", "command", line)
		}
	}
	return reply, err
}

func (m *Migration) runCommand(ctx context.Context, name, arg string, hasArg, query bool) (string, error) {
	c := m.ctl
	noArg := func() error {
		if hasArg {
			return fmt.Errorf("%s takes no value", name)
		}
		return nil
	}
	// intSetting answers a query of the setting v, or sets it to arg, an
	// integer from 1 to most.
	intSetting := func(v *atomic.Int64, most int64) (string, error) {
		if query {
			return strconv.FormatInt(v.Load(), 10) + "\n", nil
		}
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 1 || n > most {
			return "", fmt.Errorf("%s=%q: want an integer from 1 to %d", name, arg, most)
		}
		v.Store(n)
		return fmt.Sprintf("%s set to %d\n", name, n), nil
	}
	switch name {
	case "help":
		return helpText, noArg()
	case "status", "info":
		if err := noArg(); err != nil {
			return "", err
		}
		return m.Status().String() + "\n" + m.settingsText(), nil
	case "sup":
		if err := noArg(); err != nil {
			return "", err
		}
		return m.Status().String() + "\n", nil
	case "coordinates":
		if hasArg && !query {
			return "", errors.New("coordinates are read-only")
		}
		if _, src, _ := m.ctl.view(); src != nil {
			return src.Lag() + "\n", nil
		}
		return "change capture not started\n", nil
	case "dml-batch-size":
		return intSetting(&c.batchSize, 1_000_000)
	case "copy-threads":
		return intSetting(&c.copyThreads, MaxCopyThreads)
	case "checksum-threads":
		return intSetting(&c.checksumThreads, MaxChecksumThreads)
	case "postpone", "no-cut-over":
		if err := noArg(); err != nil {
			return "", err
		}
		r, err := m.postpone()
		return r + "\n", err
	case "unpostpone", "no-postpone", "cut-over":
		r, err := m.unpostpone(arg)
		return r + "\n", err
	case "panic":
		r, err := m.panicAbort(arg)
		return r + "\n", err
	case "revert", "finish":
		r, err := m.revertCommand(name == "revert", arg, commandTimeout-5*time.Second)
		return r + "\n", err
	}
	if reply, ok, err := c.settingCommand(ctx, m.d, name, arg, hasArg, query); ok {
		return reply, err
	}
	return "", fmt.Errorf("unknown command %q; try help", name)
}

// replicaNames reads and shows the entries of --throttle-control-replicas:
// the dialect's ParseReplicas and DisplayReplica.
type replicaNames interface {
	ParseReplicas(list string) ([]string, error)
	DisplayReplica(entry string) string
}

// settingCommand runs the commands that set the pace and the throttle, which
// a migration and a backfill share; ok is false for any other command.
func (c *control) settingCommand(ctx context.Context, names replicaNames, name, arg string, hasArg, query bool) (reply string, ok bool, err error) {
	noArg := func() error {
		if hasArg {
			return fmt.Errorf("%s takes no value", name)
		}
		return nil
	}
	switch name {
	case "chunk-size":
		if query {
			return strconv.FormatInt(c.chunkSize.Load(), 10) + "\n", true, nil
		}
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 1 || n > 1_000_000 {
			return "", true, fmt.Errorf("%s=%q: want an integer from 1 to 1000000", name, arg)
		}
		c.chunkSize.Store(n)
		c.copySize.Store(n)
		return fmt.Sprintf("%s set to %d\n", name, n), true, nil
	case "nice-ratio":
		if query {
			return strconv.FormatFloat(c.nice(), 'g', -1, 64) + "\n", true, nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > maxNiceRatio {
			return "", true, fmt.Errorf("nice-ratio=%q: want a number from 0 to %d", arg, maxNiceRatio)
		}
		c.niceRatio.Store(math.Float64bits(f))
		return fmt.Sprintf("nice-ratio set to %g\n", f), true, nil
	case "max-lag-millis":
		if query {
			return strconv.FormatInt(c.throttleSettings().MaxLag.Milliseconds(), 10) + "\n", true, nil
		}
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 || n > 24*3600*1000 {
			return "", true, fmt.Errorf("max-lag-millis=%q: want milliseconds, 0 (do not check) or more", arg)
		}
		c.updateThrottle(func(s *throttle.Settings) { s.MaxLag = time.Duration(n) * time.Millisecond })
		return fmt.Sprintf("max-lag-millis set to %d\n", n), true, nil
	case "max-load", "critical-load":
		if query {
			s := c.throttleSettings()
			if name == "max-load" {
				return s.MaxLoad.String() + "\n", true, nil
			}
			return s.CriticalLoad.String() + "\n", true, nil
		}
		th, err := throttle.ParseThresholds(arg)
		if err != nil {
			return "", true, fmt.Errorf("%s: %w", name, err)
		}
		if _, probe := c.currentThrottler(); probe != nil && len(th) > 0 {
			if _, err := probe.Load(ctx, th.Names()); err != nil {
				return "", true, fmt.Errorf("%s: %w", name, err)
			}
		}
		c.updateThrottle(func(s *throttle.Settings) {
			if name == "max-load" {
				s.MaxLoad = th
			} else {
				s.CriticalLoad = th
			}
		})
		return fmt.Sprintf("%s set to %q\n", name, th.String()), true, nil
	case "throttle-query":
		if query {
			return c.throttleSettings().Query + "\n", true, nil
		}
		if _, probe := c.currentThrottler(); probe != nil && arg != "" {
			if _, err := probe.Query(ctx, arg); err != nil {
				return "", true, fmt.Errorf("throttle-query does not run: %w", err)
			}
		}
		c.updateThrottle(func(s *throttle.Settings) { s.Query = arg })
		return fmt.Sprintf("throttle-query set to %q\n", arg), true, nil
	case "throttle-http":
		if query {
			return c.throttleSettings().HTTP + "\n", true, nil
		}
		if arg != "" {
			if err := checkURL(arg); err != nil {
				return "", true, fmt.Errorf("throttle-http: %w", err)
			}
		}
		c.updateThrottle(func(s *throttle.Settings) { s.HTTP = arg })
		return fmt.Sprintf("throttle-http set to %q\n", arg), true, nil
	case "throttle-control-replicas":
		if query {
			return displayReplicas(names, c.throttleSettings().Replicas) + "\n", true, nil
		}
		r, err := names.ParseReplicas(arg)
		if err != nil {
			return "", true, fmt.Errorf("throttle-control-replicas: %w", err)
		}
		c.updateThrottle(func(s *throttle.Settings) { s.Replicas = r })
		return fmt.Sprintf("throttle-control-replicas set to %q\n", displayReplicas(names, r)), true, nil
	case "throttle", "pause", "suspend":
		if err := noArg(); err != nil {
			return "", true, err
		}
		c.updateThrottle(func(s *throttle.Settings) { s.Manual = true })
		return "Throttled by hand: the copy pauses after the chunk in progress; change capture and apply go on\n", true, nil
	case "no-throttle", "unthrottle", "resume", "continue":
		if err := noArg(); err != nil {
			return "", true, err
		}
		c.updateThrottle(func(s *throttle.Settings) { s.Manual = false })
		return "Throttling by hand ended\n", true, nil
	}
	return "", false, nil
}

// settingsText lists the settings in force, one "# name: value" a line.
func (m *Migration) settingsText() string {
	c := m.ctl
	var b strings.Builder
	line := func(name string, v any) { fmt.Fprintf(&b, "# %s: %v\n", name, v) }
	line("migrating", m.cfg.Table)
	line("chunk-size", c.chunkSize.Load())
	if m.cfg.ChunkTarget > 0 {
		line("target-chunk-time", m.cfg.ChunkTarget)
		line("copy chunk size now", c.copySize.Load())
	}
	line("copy-threads", c.copyThreads.Load())
	line("dml-batch-size", c.batchSize.Load())
	line("checksum-threads", c.checksumThreads.Load())
	line("nice-ratio", c.nice())
	c.throttleSettingsText(line, m.d)
	line("postpone-cut-over-flag-file", flagState(m.cfg.PostponeCutOverFlagFile))
	line("panic-flag-file", flagState(m.cfg.Control.PanicFlagFile))
	line("force-named-cut-over", m.cfg.Control.ForceNamedCutOver)
	if m.cfg.RevertWindow > 0 {
		line("revert-window", m.cfg.RevertWindow)
	}
	c.throttleStateText(line)
	return b.String()
}

// throttleSettingsText lists the throttle's settings in force with line.
func (c *control) throttleSettingsText(line func(name string, v any), names replicaNames) {
	s := c.throttleSettings()
	line("max-lag-millis", s.MaxLag.Milliseconds())
	line("throttle-control-replicas", displayReplicas(names, s.Replicas))
	line("max-load", s.MaxLoad)
	line("critical-load", s.CriticalLoad)
	line("critical-load-interval-millis", s.CriticalLoadInterval.Milliseconds())
	line("throttle-flag-file", flagState(s.FlagFile))
	line("throttle-additional-flag-file", flagState(s.AdditionalFlagFile))
	line("throttle-query", s.Query)
	line("throttle-http", s.HTTP)
	line("throttled by hand", s.Manual)
	for _, ds := range c.dialectSettings {
		line(ds.Name, ds.Value)
	}
}

// throttleStateText lists what the throttler last measured with line: the
// retained WAL and each replica's lag.
func (c *control) throttleStateText(line func(name string, v any)) {
	th, _ := c.currentThrottler()
	if th == nil {
		return
	}
	st := th.Status()
	if st.RetainedWALKnown {
		line("retained WAL now", throttle.FormatBytes(st.RetainedWAL))
	}
	for _, r := range st.Replicas {
		if r.Err != nil {
			line("replica "+r.Name, "unreadable: "+r.Err.Error())
		} else {
			line("replica "+r.Name, "lag "+r.Lag.Round(time.Millisecond).String())
		}
	}
}

// displayReplicas lists replica entries without the passwords connection
// strings may hold.
func (m *Migration) displayReplicas(entries []string) string { return displayReplicas(m.d, entries) }

func displayReplicas(names replicaNames, entries []string) string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = names.DisplayReplica(e)
	}
	return strings.Join(out, ",")
}

func flagState(f string) string {
	if f == "" {
		return ""
	}
	if _, err := os.Stat(f); err == nil {
		return f + " (exists)"
	}
	return f + " (absent)"
}
