package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

// mysqlTLSFlags are gh-ost's TLS flags for MySQL; PostgreSQL takes TLS
// settings in its DSN.
type mysqlTLSFlags struct {
	enabled, allowInsecure bool
	ca, cert, key          string
}

func addMySQLTLSFlags(fs *pflag.FlagSet) *mysqlTLSFlags {
	f := &mysqlTLSFlags{}
	fs.BoolVar(&f.enabled, "ssl", false, "MySQL: encrypt every connection (SQL and binlog) with TLS, verifying the server's certificate and host name")
	fs.StringVar(&f.ca, "ssl-ca", "", "MySQL: certificate authority (PEM) the server's certificate must be signed by (default: the system's); needs --ssl")
	fs.StringVar(&f.cert, "ssl-cert", "", "MySQL: client certificate (PEM), with --ssl-key; needs --ssl")
	fs.StringVar(&f.key, "ssl-key", "", "MySQL: client certificate's key (PEM); needs --ssl")
	fs.BoolVar(&f.allowInsecure, "ssl-allow-insecure", false, "MySQL: with --ssl, do not verify the server's certificate chain and host name")
	return f
}

// config returns the TLS configuration the flags ask for (nil: no TLS).
func (f *mysqlTLSFlags) config() (*tls.Config, error) {
	if !f.enabled {
		if f.ca != "" || f.cert != "" || f.key != "" || f.allowInsecure {
			return nil, errors.New("--ssl-ca, --ssl-cert, --ssl-key and --ssl-allow-insecure need --ssl")
		}
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.allowInsecure} //nolint:gosec // the operator's explicit --ssl-allow-insecure
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("--ssl-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ssl-ca %s: no PEM certificate in it", f.ca)
		}
	}
	switch {
	case f.cert != "" && f.key != "":
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--ssl-cert/--ssl-key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	case f.cert != "" || f.key != "":
		return nil, errors.New("--ssl-cert and --ssl-key go together")
	}
	return c, nil
}
