package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// identity is one certificate the cluster's parts present: a client
// identity (user CN, groups O) or a server name.
type identity struct {
	file string
	// frontProxy issues it from the front-proxy CA, which the API server
	// trusts for requests proxied to extension API servers.
	frontProxy bool
	// the rest are the certificate's subject and names.
	cn     string
	groups []string
	server bool
	ips    []string
	dns    []string
}

// identities lists every certificate Up issues from the cluster's own CA.
func (c Config) identities() []identity {
	return []identity{
		{file: "apiserver", cn: "kube-apiserver", server: true,
			ips: []string{c.NodeIP, c.KubernetesServiceIP, "127.0.0.1"},
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local"}},
		{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", groups: []string{"system:masters"}},
		{file: "admin", cn: "keepsake-admin", groups: []string{"system:masters"}},
		{file: "kube-controller-manager", cn: "system:kube-controller-manager"},
		{file: "kube-scheduler", cn: "system:kube-scheduler"},
		{file: "kube-proxy", cn: "system:kube-proxy"},
		{file: "kubelet", cn: "system:node:" + c.NodeName, groups: []string{"system:nodes"}},
		{file: "kubelet-server", cn: c.NodeName, server: true, ips: []string{c.NodeIP}, dns: []string{c.NodeName}},
		{file: "coredns", cn: "keepsake:coredns"},
		{file: "front-proxy-client", cn: "front-proxy-client", frontProxy: true},
	}
}

// writePKI creates a fresh cluster CA and front-proxy CA, every identity's
// key and certificate, and the service-account signing key under
// StateDir/pki.
func (c Config) writePKI() error {
	dir := c.state("pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, caKey, err := newCA(filepath.Join(dir, "ca"), "keepsake-cluster-ca")
	if err != nil {
		return err
	}
	proxyCA, proxyKey, err := newCA(filepath.Join(dir, "front-proxy-ca"), "keepsake-front-proxy-ca")
	if err != nil {
		return err
	}
	for i, id := range c.identities() {
		issuer, key := ca, caKey
		if id.frontProxy {
			issuer, key = proxyCA, proxyKey
		}
		if err := issue(filepath.Join(dir, id.file), id, int64(i+2), issuer, key); err != nil {
			return fmt.Errorf("issue %s certificate: %w", id.file, err)
		}
	}
	return writeServiceAccountKey(filepath.Join(dir, "sa"))
}

// newCA writes a self-signed CA as base.crt and base.key.
func newCA(base, name string) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-sign %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, writeKeyPair(base, der, key)
}

func issue(base string, id identity, serial int64, ca *x509.Certificate, caKey crypto.Signer) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: id.cn, Organization: id.groups},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:    id.dns,
	}
	if id.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	for _, ip := range id.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	return writeKeyPair(base, der, key)
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// writeKeyPair writes base.crt and base.key.
func writeKeyPair(base string, certDER []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(base+".key", "PRIVATE KEY", keyDER, 0o600); err != nil {
		return err
	}
	return writePEM(base+".crt", "CERTIFICATE", certDER, 0o644)
}

// writeServiceAccountKey writes the key pair that signs ServiceAccount tokens.
func writeServiceAccountKey(base string) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writePEM(base+".key", "PRIVATE KEY", keyDER, 0o600); err != nil {
		return err
	}
	return writePEM(base+".pub", "PUBLIC KEY", pubDER, 0o644)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode)
}

// writeKubeconfig writes a kubeconfig for one identity, referring to its
// certificate files rather than embedding them.
func (c Config) writeKubeconfig(id string) error {
	pki := c.state("pki")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: keepsake
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: keepsake
  context:
    cluster: keepsake
    user: %s
current-context: keepsake
`, c.APIServerURL(), filepath.Join(pki, "ca.crt"), id,
		filepath.Join(pki, id+".crt"), filepath.Join(pki, id+".key"), id)
	if err := os.MkdirAll(c.state("kubeconfig"), 0o700); err != nil {
		return err
	}
	return os.WriteFile(c.state("kubeconfig", id+".kubeconfig"), []byte(data), 0o600)
}
