package servers

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func query(t *testing.T, s *InfluxDB, user, pass, q string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(url.Values{"q": {q}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestInfluxDBStartsAndStops(t *testing.T) {
	s := StartInfluxDB(t)
	if code, body := query(t, s, "", "", "CREATE DATABASE probe"); code != http.StatusOK {
		t.Fatalf("create database: %d %s", code, body)
	}
	s.Stop()
	if _, err := http.Get(s.URL + "/ping"); err == nil {
		t.Fatal("influxd still answers after Stop")
	}
}

func TestInfluxDBWithAuth(t *testing.T) {
	s := StartInfluxDB(t, WithAuth())
	if code, _ := query(t, s, "", "", "SHOW DATABASES"); code != http.StatusUnauthorized {
		t.Fatalf("anonymous query: status %d, want 401", code)
	}
	if code, body := query(t, s, s.Username, s.Password, "SHOW DATABASES"); code != http.StatusOK {
		t.Fatalf("admin query: %d %s", code, body)
	}
}
