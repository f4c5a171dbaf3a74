package demo

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestOnlyInfluxDBAnswers: the wait for the database takes InfluxDB's
// answers (403 "create admin user first" included) and nothing else on the
// path. In CI, the cluster IP of a Service kube-proxy did not yet know was
// answered by the sandbox's egress proxy with an empty 404, taken for the
// database, and the admin was then "created" there.
func TestOnlyInfluxDBAnswers(t *testing.T) {
	egress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Server", "keryx")
		w.WriteHeader(http.StatusNotFound)
	}))
	defer egress.Close()
	if a := query(hyperbytedbtest.Server{URL: egress.URL}, "SHOW USERS"); a.fromInfluxDB() {
		t.Errorf("the egress proxy's %s was taken for InfluxDB's", a)
	}
	if a := query(hyperbytedbtest.Server{URL: "http://127.0.0.1:1"}, "SHOW USERS"); a.fromInfluxDB() {
		t.Errorf("no answer (%s) was taken for InfluxDB's", a)
	}
	db := servers.StartInfluxDB(t, servers.WithAuth())
	if a := query(hyperbytedbtest.Server{URL: db.URL}, "SHOW USERS"); !a.fromInfluxDB() || a.code != http.StatusUnauthorized {
		t.Errorf("InfluxDB's answer to an anonymous query: %s, want a 401 from InfluxDB", a)
	}
}
