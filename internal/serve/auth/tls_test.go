package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number and its key to dir/cert.pem and dir/key.pem.
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "ferry test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// startTLS serves h with exactly cfg (httptest.Server.StartTLS would add
// its own certificate, which takes precedence over GetCertificate).
func startTLS(t *testing.T, cfg *tls.Config, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.Start()
	srv.URL = "https://" + srv.Listener.Addr().String()
	t.Cleanup(srv.Close)
	return srv
}

func pool(t *testing.T, certFile string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("bad PEM")
	}
	return p
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	cfg, err := TLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x", cfg.MinVersion)
	}
	srv := startTLS(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := strings.TrimPrefix(srv.URL, "https://")

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool(t, certFile), MinVersion: v, MaxVersion: v})
		if err != nil {
			t.Fatalf("TLS %x: %v", v, err)
		}
		conn.Close()
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool(t, certFile), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, _ := writeCert(t, dir, 1)
	_, otherKey := writeCert(t, t.TempDir(), 2)
	if _, err := TLSConfig(certFile, otherKey); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Errorf("mismatched key: %v", err)
	}
	missing := filepath.Join(dir, "nope.pem")
	if _, err := TLSConfig(missing, otherKey); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing cert: %v", err)
	}
}

func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	r := &reloader{certFile: certFile, keyFile: keyFile} // every: 0, stat on each handshake
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	srv := startTLS(t, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := strings.TrimPrefix(srv.URL, "https://")
	serial := func(roots string) int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool(t, roots)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(certFile); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	first, _ := os.ReadFile(certFile)

	// Replace the certificate only: the pair is inconsistent, the old one stays.
	other := t.TempDir()
	newCert, newKey := writeCert(t, other, 2)
	copyFile(t, newCert, certFile)
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	os.WriteFile(filepath.Join(other, "old.pem"), first, 0o644)
	if got := serial(filepath.Join(other, "old.pem")); got != 1 {
		t.Fatalf("after replacing only the cert: serial %d, want 1", got)
	}
	// Now the key too: the new pair is served.
	copyFile(t, newKey, keyFile)
	os.Chtimes(keyFile, later, later)
	if got := serial(certFile); got != 2 {
		t.Fatalf("after replacing cert and key: serial %d, want 2", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
