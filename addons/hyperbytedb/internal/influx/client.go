// Package influx is a small client for the InfluxDB v1 HTTP API (/ping,
// /query, /write), which HyperbyteDB also speaks. It streams chunked query
// results instead of reading them whole, so memory stays bounded by one
// chunk however large a measurement is.
package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one server.
type Client struct {
	base       *url.URL
	http       *http.Client
	user, pass string
	version    string // X-Influxdb-Version of the last /ping
}

// Scope is the database and retention policy a statement runs in, sent as
// the db and rp form parameters of /query. HyperbyteDB needs them:
// without db it answers "database is required" to SELECT and the SHOW
// statements (hyperbytedb/src/application/query_service.rs:549, :703,
// :768, :851), and it takes the retention policy of SHOW FIELD KEYS, SHOW
// TAG KEYS and SHOW MEASUREMENTS from rp alone (query_service.rs:552,
// :706, resolve_retention_policy_for_select at :2002). InfluxDB 1.x
// accepts both and uses them as defaults.
type Scope struct {
	DB, RP string
}

// New returns a client for the server at rawURL (e.g. http://db:8086),
// authenticating with user and pass when user is not empty.
func New(rawURL, user, pass string) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want http(s)://host:port", rawURL)
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		TLSHandshakeTimeout: 10 * time.Second,
		// Whole-response compression would cost CPU on both ends of what is
		// usually a cluster-local link; the dump is compressed by restic.
		DisableCompression: true,
		// A query answer is tens of MB of small HTTP chunks; the default
		// 4 KiB read buffer takes one read(2) per chunk, a 256 KiB one
		// reads many chunks at a time (a sixth of the driver's CPU time
		// went to those syscalls).
		ReadBufferSize: 256 << 10,
	}
	return &Client{base: u, http: &http.Client{Transport: transport}, user: user, pass: pass}, nil
}

// Series is one series of a query result, or one chunk of it.
type Series struct {
	Name    string              `json:"name"`
	Tags    map[string]string   `json:"tags"`
	Columns []string            `json:"columns"`
	Values  [][]json.RawMessage `json:"values"`
	Partial bool                `json:"partial"`
}

// response is one JSON document of /query: the whole answer, or one chunk.
type response struct {
	Results []result `json:"results"`
	Error   string   `json:"error"`
}

type result struct {
	Series  []Series `json:"series"`
	Error   string   `json:"error"`
	Partial bool     `json:"partial"`
}

// clone returns a copy of s that shares no memory with it.
func (s *Series) clone() Series {
	out := Series{Name: s.Name, Partial: s.Partial, Columns: append([]string(nil), s.Columns...)}
	if s.Tags != nil {
		out.Tags = make(map[string]string, len(s.Tags))
		for k, v := range s.Tags {
			out.Tags[k] = v
		}
	}
	for _, row := range s.Values {
		cp := make([]json.RawMessage, len(row))
		for i, v := range row {
			cp[i] = append(json.RawMessage(nil), v...)
		}
		out.Values = append(out.Values, cp)
	}
	return out
}

// Ping checks the server answers and notes which server it is.
func (c *Client) Ping(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/ping", nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	c.version = resp.Header.Get("X-Influxdb-Version")
	return nil
}

// Version is the server's X-Influxdb-Version header as of the last Ping.
func (c *Client) Version() string { return c.version }

// HyperbyteDB reports whether the last Ping was answered by HyperbyteDB,
// which sends X-Influxdb-Version "HyperbyteDB-<version>"
// (hyperbytedb/src/adapters/http/middleware.rs:4) where InfluxDB sends
// its own version number.
func (c *Client) HyperbyteDB() bool {
	return strings.HasPrefix(c.version, "HyperbyteDB")
}

// Exec runs statements that return no rows (DDL).
func (c *Client) Exec(ctx context.Context, scope Scope, q string) error {
	_, err := c.Query(ctx, scope, q)
	return err
}

// Query runs q and returns all series of its (small) answer: use it for
// SHOW statements, never for data.
func (c *Client) Query(ctx context.Context, scope Scope, q string) ([]Series, error) {
	var all []Series
	err := c.stream(ctx, scope, q, 0, func(s *Series) error {
		all = append(all, s.clone())
		return nil
	})
	return all, err
}

// Stream runs q with chunked results of chunkSize rows and calls fn for
// every series chunk in order. fn must not keep s or anything in it: the
// next chunk is decoded into the same memory. Stream fails if the
// answer ends before its last chunk, so a server that dies mid-query is
// an error rather than a short result.
func (c *Client) Stream(ctx context.Context, scope Scope, q string, chunkSize int, fn func(s *Series) error) error {
	return c.stream(ctx, scope, q, chunkSize, fn)
}

func (c *Client) stream(ctx context.Context, scope Scope, q string, chunkSize int, fn func(*Series) error) error {
	form := url.Values{"q": {q}, "epoch": {"ns"}}
	if scope.DB != "" {
		form.Set("db", scope.DB)
	}
	if scope.RP != "" {
		form.Set("rp", scope.RP)
	}
	if chunkSize > 0 {
		form.Set("chunked", "true")
		form.Set("chunk_size", fmt.Sprint(chunkSize))
	}
	resp, err := c.do(ctx, http.MethodPost, "/query", strings.NewReader(form.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"},
	})
	if err != nil {
		return fmt.Errorf("query %q: %w", q, err)
	}
	defer resp.Body.Close()
	if err := decodeChunks(resp.Body, fn); err != nil {
		return fmt.Errorf("query %q: %w", q, err)
	}
	return nil
}

// decodeChunks reads the JSON documents of a (chunked) answer one at a
// time. The last document of a complete answer is not marked partial.
func decodeChunks(body io.Reader, fn func(*Series) error) error {
	sc := newScanner(body)
	partial := true
	var doc response
	for {
		err := sc.document(&doc)
		if errors.Is(err, io.EOF) {
			if partial {
				return errors.New("answer ended before its last chunk")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read answer: %w", err)
		}
		if doc.Error != "" {
			return errors.New(doc.Error)
		}
		partial = false
		for i := range doc.Results {
			r := &doc.Results[i]
			if r.Error != "" {
				return errors.New(r.Error)
			}
			partial = partial || r.Partial
			for j := range r.Series {
				if err := fn(&r.Series[j]); err != nil {
					return err
				}
			}
		}
	}
}

// Write writes line-protocol points (nanosecond timestamps) to db.rp.
func (c *Client) Write(ctx context.Context, db, rp string, body []byte) error {
	params := url.Values{"db": {db}, "precision": {"ns"}}
	if rp != "" {
		params.Set("rp", rp)
	}
	resp, err := c.do(ctx, http.MethodPost, "/write?"+params.Encode(), bytes.NewReader(body), http.Header{
		"Content-Type": {"text/plain; charset=utf-8"},
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// do sends one request and turns a non-2xx answer into an error carrying
// the server's message.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, h http.Header) (*http.Response, error) {
	u := c.base.JoinPath(strings.SplitN(path, "?", 2)[0])
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u.RawQuery = path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, &StatusError{Code: resp.StatusCode, Message: serverMessage(resp.Body)}
	}
	return resp, nil
}

// StatusError is a non-2xx answer of the server.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Message is the server's error message.
	Message string
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.Code, e.Message)
}

// serverMessage extracts {"error": "..."} from an error answer, or returns
// its start as text.
func serverMessage(body io.Reader) string {
	data, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var doc struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &doc) == nil && doc.Error != "" {
		return doc.Error
	}
	return strings.TrimSpace(string(data))
}
