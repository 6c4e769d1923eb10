package auth

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSConfig loads a certificate (PEM, leaf first, then intermediates) and
// its private key and returns a server configuration that accepts TLS 1.2
// and newer only, with Go's default cipher suites and HTTP/2 offered.
//
// The files are checked again on each new handshake (a stat of both, at
// most once a second): when either has changed, the pair is reloaded, so a
// renewed certificate is picked up without a restart. If a reload fails
// (for example the certificate was replaced but not yet the key), the
// previous pair keeps being served until a consistent pair is in place.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	r := &reloader{certFile: certFile, keyFile: keyFile, every: time.Second}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.get,
	}, nil
}

type reloader struct {
	certFile, keyFile string
	every             time.Duration // how often to stat the files at most

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string    // sizes and modification times of both files when loaded
	checked time.Time // last time the files were stat'ed
}

func (r *reloader) fileStamp() (string, error) {
	var s string
	for _, name := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("loading TLS key pair: %w", err)
		}
		s += fmt.Sprintf("%d@%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

// load (re)reads the key pair; the caller holds r.mu or owns r.
func (r *reloader) load() error {
	stamp, err := r.fileStamp()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading TLS key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, time.Now()
	return nil
}

func (r *reloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= r.every {
		r.checked = time.Now()
		if stamp, err := r.fileStamp(); err == nil && stamp != r.stamp {
			r.load() // on error the previous pair stays
		}
	}
	return r.cert, nil
}
