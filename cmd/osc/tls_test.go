package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a self-signed certificate (PEM) and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMySQLTLSFlags(t *testing.T) {
	ca := writeCA(t)
	c, err := (&mysqlTLSFlags{enabled: true, ca: ca}).config()
	if err != nil || c == nil || c.RootCAs == nil || c.InsecureSkipVerify {
		t.Fatalf("--ssl --ssl-ca: %+v, %v", c, err)
	}
	if c, err := (&mysqlTLSFlags{}).config(); c != nil || err != nil {
		t.Errorf("no --ssl: %v, %v", c, err)
	}
	for _, tc := range []struct {
		f    mysqlTLSFlags
		want string
	}{
		{mysqlTLSFlags{ca: ca}, "need --ssl"},
		{mysqlTLSFlags{enabled: true, cert: ca}, "go together"},
		{mysqlTLSFlags{enabled: true, ca: "/nonexistent.pem"}, "--ssl-ca"},
		{mysqlTLSFlags{enabled: true, ca: os.Args[0]}, "no PEM certificate"},
	} {
		if _, err := tc.f.config(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
	}
	if _, _, err := parseFlags([]string{"--dsn", "postgres://x", "--table", "t", "--alter", "ADD c INT", "--ssl"}, nil); err == nil ||
		!strings.Contains(err.Error(), "sslmode") {
		t.Errorf("--ssl with --dsn: %v", err)
	}
}
