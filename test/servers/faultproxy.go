package servers

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Fault is a kind of failure a FaultProxy injects into a request.
type Fault string

const (
	// FaultUnavailable answers 503 Service Unavailable with an S3 error
	// body (SlowDown), as an overloaded S3 endpoint does; the request never
	// reaches the server.
	FaultUnavailable Fault = "503"
	// FaultReset resets the client's connection (TCP RST) before any
	// answer; the request never reaches the server.
	FaultReset Fault = "reset"
	// FaultDelay holds the request for FaultProxyConfig.Delay, then
	// forwards it: a slow, not a failed, request.
	FaultDelay Fault = "delay"
)

// Faults are the kinds a FaultProxy injects, in the order it takes them
// in turn.
var Faults = []Fault{FaultUnavailable, FaultReset, FaultDelay}

// FaultProxyConfig says how often and how a FaultProxy fails requests.
type FaultProxyConfig struct {
	// Share is the fraction of requests that get a fault, e.g. 0.2 for
	// one in five; each request is drawn at random.
	Share float64
	// MaxInARow bounds how many requests in a row get a fault, so that a
	// client that retries gets through.
	MaxInARow int
	// Delay is how long a FaultDelay holds a request.
	Delay time.Duration
	// Seed makes the draws repeatable: the same sequence of requests gets
	// the same faults.
	Seed uint64
}

// FaultProxy is an HTTP reverse proxy in front of an S3 server that fails a
// bounded share of requests: 503 answers, connection resets and delays,
// taken in turn. It keeps the client's Host header (S3 signatures cover
// it), counts what it injected, and can be switched off, after which it
// forwards every request untouched.
type FaultProxy struct {
	// URL is where clients reach the proxy, e.g. "http://198.18.0.1:40123".
	URL string

	cfg   FaultProxyConfig
	proxy *httputil.ReverseProxy
	srv   *http.Server
	log   *syncBuffer

	mu        sync.Mutex
	on        bool
	rng       *rand.Rand
	inARow    int
	turn      int
	injected  map[Fault]int
	forwarded int
}

// StartFaultProxy starts a proxy listening on host (an IP address) on a
// free port, in front of target (the server's URL), with faults on. It
// stops when the test ends; its log of injected faults is printed if the
// test failed.
func StartFaultProxy(t testing.TB, host, target string, cfg FaultProxyConfig) *FaultProxy {
	t.Helper()
	backend, err := url.Parse(target)
	if err != nil {
		t.Fatalf("fault proxy target %q: %v", target, err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("fault proxy listen on %s: %v", host, err)
	}
	p := &FaultProxy{
		URL: "http://" + l.Addr().String(), cfg: cfg, log: &syncBuffer{},
		on: true, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed)), injected: map[Fault]int{},
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(backend)
			r.Out.Host = r.In.Host
		},
		// The client chose its encodings; the proxy adds none.
		Transport: &http.Transport{DisableCompression: true, Proxy: nil},
		ErrorLog:  log.New(p.log, "forward: ", log.Ltime),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: time.Minute, ErrorLog: log.New(p.log, "serve: ", log.Ltime)}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(func() {
		_ = p.srv.Close()
		if t.Failed() {
			t.Logf("fault proxy %s log:\n%s", p.URL, p.log.String())
		}
	})
	return p
}

// SetFaults switches fault injection on or off; off, every request is
// forwarded at once.
func (p *FaultProxy) SetFaults(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on, p.inARow = on, 0
}

// Injected returns how many faults of each kind the proxy injected.
func (p *FaultProxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Fault]int, len(p.injected))
	for f, n := range p.injected {
		out[f] = n
	}
	return out
}

// Forwarded returns how many requests reached the server, delayed ones
// included.
func (p *FaultProxy) Forwarded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forwarded
}

// ServeHTTP injects the fault drawn for the request, if any, and forwards
// the request unless the fault stops it.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fault := p.draw()
	if fault != "" {
		fmt.Fprintf(p.log, "%s %s %s: %s\n", time.Now().Format(time.StampMilli), r.Method, r.URL.Path, fault)
	}
	switch fault {
	case FaultUnavailable:
		unavailable(w, r)
		return
	case FaultReset:
		reset(w)
		return
	case FaultDelay:
		if !sleep(r.Context(), p.cfg.Delay) {
			return
		}
	}
	p.mu.Lock()
	p.forwarded++
	p.mu.Unlock()
	p.proxy.ServeHTTP(w, r)
}

// draw decides the fault of the next request: none, or the next kind in
// turn, for a Share of requests and never more than MaxInARow in a row.
func (p *FaultProxy) draw() Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on || p.inARow >= p.cfg.MaxInARow || p.rng.Float64() >= p.cfg.Share {
		p.inARow = 0
		return ""
	}
	p.inARow++
	f := Faults[p.turn%len(Faults)]
	p.turn++
	p.injected[f]++
	return f
}

// unavailable answers as S3 does when it sheds load.
func unavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected by the test's fault proxy).</Message>`+
		`<Resource>%s</Resource><RequestId>fault-proxy</RequestId></Error>`, r.URL.Path)
}

// reset closes the client's connection with a TCP RST, answering nothing.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST, not FIN
	}
	_ = conn.Close()
}

// sleep waits d, or until ctx ends (the client gave up); it reports
// whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
