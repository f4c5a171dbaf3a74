package demo

import (
	"slices"
	"testing"
)

func TestEmptyColumns(t *testing.T) {
	tests := map[string]struct {
		// out is kubectl get's output.
		out string
		// want are the empty columns.
		want []string
	}{
		"every column filled": {
			out: "NAME                  PHASE   AGE\nbackupstorage/minio   Ready   5m\n",
		},
		"a column no row fills": {
			out:  "NAME                  PHASE   SIZE   AGE\nbackupstorage/minio   Ready          5m\nbackupstorage/other   Ready          1m\n",
			want: []string{"backupstorage/minio/SIZE"},
		},
		"one row fills it": {
			out: "NAME                  PHASE   SIZE   AGE\nbackupstorage/minio   Ready          5m\nbackupstorage/other   Ready   3G     1m\n",
		},
		"<none> is empty, and tables are judged apart": {
			out:  "NAME          PHASE\nrepository/a  <none>\n\nNAME          PHASE\nsnapshot/b    Succeeded\n",
			want: []string{"repository/a/PHASE"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := EmptyColumns(tc.out); !slices.Equal(got, tc.want) {
				t.Errorf("EmptyColumns = %q, want %q", got, tc.want)
			}
		})
	}
}
