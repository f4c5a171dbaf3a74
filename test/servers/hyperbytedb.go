package servers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// HyperbyteDB is an emulation of HyperbyteDB's InfluxDB v1 HTTP API
// (/ping, /query, /write), built from reading its source
// (github.com/hyperbyte-cloud/hyperbytedb, commit 312a0fb, files under
// hyperbytedb/src/), in front of a real InfluxDB 1.x that stores the data.
// HyperbyteDB itself cannot be built here (its build needs crates and a
// chDB download). The emulation answers as HyperbyteDB does where that
// differs in ways that matter to a client dumping and restoring data; each
// behaviour cites the source it follows (docs/hyperbytedb-compatibility.md
// has the table). Anything else is passed to InfluxDB unchanged, so this is
// no model of HyperbyteDB's storage.
type HyperbyteDB struct {
	// URL is the emulation's base URL.
	URL string
	// Backend is the InfluxDB holding the data; tests read the truth there.
	Backend *InfluxDB

	maxResponse int
	srv         *httptest.Server
	http        *http.Client

	mu    sync.Mutex
	stale map[string]map[string]bool // db → measurements its stale schema cache hides
}

// HyperbyteDBOption configures StartHyperbyteDB.
type HyperbyteDBOption func(*HyperbyteDB)

// WithMaxResponse sets the largest query answer, in bytes, the emulation
// sends; a larger one fails as HyperbyteDB's query timeout does.
func WithMaxResponse(bytes int) HyperbyteDBOption {
	return func(h *HyperbyteDB) { h.maxResponse = bytes }
}

// DefaultMaxResponse stands for what HyperbyteDB builds and sends within
// its 30 s query timeout (hyperbytedb/src/config.rs:592-593): it builds a
// whole answer in memory, chunked or not.
const DefaultMaxResponse = 8 << 20

// hyperbyteVersion is the X-Influxdb-Version HyperbyteDB sends on every
// answer (hyperbytedb/src/adapters/http/middleware.rs:4, :16-22).
const hyperbyteVersion = "HyperbyteDB-0.8.5"

// StartHyperbyteDB starts an InfluxDB and the emulation in front of it,
// both stopped when the test ends.
func StartHyperbyteDB(t testing.TB, opts ...HyperbyteDBOption) *HyperbyteDB {
	t.Helper()
	h := &HyperbyteDB{Backend: StartInfluxDB(t), maxResponse: DefaultMaxResponse, http: &http.Client{}, stale: map[string]map[string]bool{}}
	for _, o := range opts {
		o(h)
	}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	h.URL = h.srv.URL
	return h
}

// Kill kills the backend InfluxDB, as a crash of the server would.
func (h *HyperbyteDB) Kill() { h.Backend.Kill() }

func (h *HyperbyteDB) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Influxdb-Version", hyperbyteVersion)
	w.Header().Set("X-Influxdb-Build", "OSS")
	switch r.URL.Path {
	case "/ping":
		w.WriteHeader(http.StatusNoContent) // adapters/http/ping.rs:12
	case "/write":
		h.write(w, r) // hyperbytedb_write.go
	case "/query":
		h.query(w, r)
	default:
		http.NotFound(w, r)
	}
}

// forward passes a request to the backend as it is.
func (h *HyperbyteDB) forward(w http.ResponseWriter, r *http.Request) {
	u := h.Backend.URL + r.URL.Path + "?" + r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := h.http.Do(req)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		if !strings.HasPrefix(k, "X-Influxdb") {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// request is what one /query call asks.
type request struct {
	q, db, rp, epoch string
	chunked          bool
	auth             string
}

func (h *HyperbyteDB) query(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req := request{q: r.Form.Get("q"), db: r.Form.Get("db"), rp: r.Form.Get("rp"), epoch: r.Form.Get("epoch"),
		chunked: r.Form.Get("chunked") == "true", auth: r.Header.Get("Authorization")}
	results, status, err := h.statements(req)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	body, err := json.Marshal(map[string]any{"results": results})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(body) > h.maxResponse {
		// The whole answer is built before sending (chunked=true makes one
		// JSON document per statement, adapters/http/query.rs:260-279,
		// ignoring chunk_size); too large an answer outlives the query
		// timeout (application/query_service.rs:134), answered 408
		// (adapters/http/error.rs:38).
		writeError(w, http.StatusRequestTimeout, "query timeout")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

// result is one statement's answer.
type result struct {
	StatementID int       `json:"statement_id"`
	Series      []*series `json:"series,omitempty"`
	Error       string    `json:"error,omitempty"`
}

type series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags,omitempty"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// backend runs one statement on the backend InfluxDB and returns its
// answer, or the error the backend gave.
func (h *HyperbyteDB) backend(req request, q string) (*result, error) {
	form := url.Values{"q": {q}}
	for k, v := range map[string]string{"db": req.db, "rp": req.rp, "epoch": req.epoch} {
		if v != "" {
			form.Set(k, v)
		}
	}
	hr, err := http.NewRequest(http.MethodPost, h.Backend.URL+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if req.auth != "" {
		hr.Header.Set("Authorization", req.auth)
	}
	resp, err := h.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Results []*result `json:"results"`
		Error   string    `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("backend answered %d: %s", resp.StatusCode, data)
	}
	if doc.Error != "" {
		return nil, &statusError{code: resp.StatusCode, msg: doc.Error}
	}
	if len(doc.Results) != 1 {
		return nil, fmt.Errorf("backend answered %d results to one statement", len(doc.Results))
	}
	return doc.Results[0], nil
}

// statusError is a whole-request error with its HTTP status.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
