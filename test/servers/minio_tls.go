package servers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// StartMinIOTLS starts a MinIO server as StartMinIO does, serving HTTPS
// with a certificate for 127.0.0.1 signed by a private CA made for the
// test; CAPEM holds that CA. Clients trust it only if told to.
func StartMinIOTLS(t testing.TB) *MinIO {
	t.Helper()
	SkipIfShort(t, "MinIO")
	certsDir := t.TempDir()
	caPEM := writeServerCert(t, certsDir)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	m := newMinIO(t)
	m.CAPEM, m.certsDir = caPEM, certsDir
	m.httpClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	m.Endpoint = "https://" + m.address
	m.run(t)
	return m
}

// writeServerCert makes a CA and a server certificate for 127.0.0.1 signed
// by it, writes the certificate and key where MinIO's --certs-dir expects
// them, and returns the CA in PEM.
func writeServerCert(t testing.TB, dir string) []byte {
	t.Helper()
	c := NewCertificate(t, "127.0.0.1", "localhost")
	if err := os.WriteFile(filepath.Join(dir, "public.crt"), c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "private.key"), c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return c.CAPEM
}

// Certificate is a server certificate and its key, signed by a private CA
// made for one test, all in PEM.
type Certificate struct {
	CAPEM, CertPEM, KeyPEM []byte
}

// NewCertificate makes a private CA and a server certificate signed by it
// for hosts (IP addresses or DNS names), valid for a day.
func NewCertificate(t testing.TB, hosts ...string) Certificate {
	t.Helper()
	caKey := newKey(t)
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keepsake test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Certificate{CAPEM: encodePEM("CERTIFICATE", caDER), CertPEM: encodePEM("CERTIFICATE", leafDER), KeyPEM: encodePEM("PRIVATE KEY", keyDER)}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
