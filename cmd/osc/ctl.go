package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osc/engine"
)

// ctlTimeout bounds one exchange with a running osc.
const ctlTimeout = 40 * time.Second

// runCtl is `osc ctl`: it sends one interactive command to a running osc
// and prints the reply, so that nobody needs netcat.
func runCtl(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("osc ctl", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	socket := fs.String("socket", "", "the running osc's --serve-socket-file")
	database := fs.String("database", "", "with --table: find the socket osc serves by default for this database (PostgreSQL: the database of the DSN)")
	tbl := fs.String("table", "", "with --database: the migrated table (PostgreSQL: schema.table or table in public)")
	tcp := fs.String("tcp", "", "host:port of a running osc's --serve-tcp-port instead of a socket")
	fs.Usage = func() {
		fmt.Fprint(stdout, `osc ctl: send an interactive command to a running osc.

Usage:
  osc ctl --socket PATH COMMAND
  osc ctl --database D --table T COMMAND
  osc ctl --tcp 127.0.0.1:PORT COMMAND

COMMAND is one of help, status, sup, coordinates, throttle, no-throttle,
chunk-size=N, copy-threads=N, dml-batch-size=N, checksum-threads=N, nice-ratio=F, max-lag-millis=N, max-load=...,
critical-load=..., throttle-query=..., throttle-http=...,
throttle-control-replicas=..., postpone, unpostpone, cut-over=<table>, panic,
revert, finish (in a --revert-window);
"name=?" reads a setting.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	command := strings.TrimSpace(strings.Join(fs.Args(), " "))
	if command == "" {
		return usageError{errors.New("no command (try: osc ctl --socket PATH help)")}
	}
	if strings.ContainsAny(command, "\r\n") {
		return usageError{errors.New("a command is one line")}
	}
	network, addr, err := ctlAddress(*socket, *database, *tbl, *tcp)
	if err != nil {
		return usageError{err}
	}
	reply, err := ctlSend(network, addr, command)
	if err != nil {
		return err
	}
	if msg, ok := strings.CutPrefix(reply, "error: "); ok {
		return errors.New(strings.TrimSpace(msg))
	}
	_, err = io.WriteString(stdout, reply)
	return err
}

// ctlAddress resolves where the running osc listens.
func ctlAddress(socket, database, tbl, tcp string) (network, addr string, err error) {
	given := 0
	for _, s := range []string{socket, tcp, database + tbl} {
		if s != "" {
			given++
		}
	}
	switch {
	case given != 1:
		return "", "", errors.New("give exactly one of --socket, --tcp, or --database with --table")
	case tcp != "":
		return "tcp", tcp, nil
	case socket != "":
		return "unix", socket, nil
	case database == "" || tbl == "":
		return "", "", errors.New("--database and --table go together")
	}
	candidates := []string{engine.DefaultSocketFile(database, tbl)}
	if !strings.Contains(tbl, ".") {
		candidates = append(candidates, engine.DefaultSocketFile(database, "public."+tbl))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return "unix", c, nil
		}
	}
	return "", "", fmt.Errorf("no osc serves %s.%s here (no socket %s); give --socket",
		database, tbl, strings.Join(candidates, " or "))
}

// ctlSend sends the command and reads the whole reply.
func ctlSend(network, addr, command string) (string, error) {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w (is osc running?)", addr, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(ctlTimeout)); err != nil {
		return "", fmt.Errorf("%w", err)
	}
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("read the reply: %w", err)
	}
	return string(reply), nil
}
