// Package tlsconf builds the TLS configurations edgestock's listeners and
// clients use from PEM files named in the config.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Server loads a certificate and key for a listener; (nil, nil) when both
// paths are empty.
func Server(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: give both a certificate and a key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Client trusts only the CA in caFile (pinning) when given, and presents a
// client certificate when certFile and keyFile are given; nil when all are
// empty (system roots, no client certificate).
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		s, err := Server(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = s.Certificates
	}
	return cfg, nil
}

// HTTPServer is an http.Server for h, with TLS from certFile and keyFile
// when given (see Server). Load it before listening: a bad certificate
// then leaves no listener behind.
func HTTPServer(certFile, keyFile string, h http.Handler) (*http.Server, error) {
	cfg, err := Server(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, TLSConfig: cfg}, nil
}

// Serve runs srv on ln, over TLS when srv.TLSConfig is set (its
// certificates are already loaded), until srv is shut down (then nil) or
// serving fails.
func Serve(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
