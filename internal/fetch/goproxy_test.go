package fetch

import (
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseGOPROXY(t *testing.T) {
	tests := []struct {
		in      string
		want    []Entry
		wantErr string
	}{
		{in: "https://a.example,direct", want: []Entry{{URL: "https://a.example"}, {Direct: true}}},
		{in: "https://a.example|https://b.example,off", want: []Entry{
			{URL: "https://a.example", FallThroughOnAnyError: true}, {URL: "https://b.example"}, {Off: true}}},
		{in: "off", want: []Entry{{Off: true}}},
		{in: "direct", want: []Entry{{Direct: true}}},
		{in: "direct,https://ignored.example", want: []Entry{{Direct: true}}},
		{in: "off|direct", want: []Entry{{Off: true, FallThroughOnAnyError: true}}},
		{in: " a.example/sub , ,http://127.0.0.1:8080/x|", want: []Entry{
			{URL: "https://a.example/sub"}, {URL: "http://127.0.0.1:8080/x", FallThroughOnAnyError: true}}},
		{in: "localhost:3000", want: []Entry{{URL: "https://localhost:3000"}}},
		{in: "file:///srv/proxy,direct", want: []Entry{{URL: "file:///srv/proxy"}, {Direct: true}}},
		{in: "", wantErr: "empty value"},
		{in: ",", wantErr: "contains no entries"},
		{in: " | ", wantErr: "contains no entries"},
		{in: "/abs/path", wantErr: "missing scheme"},
		{in: "ftp://a.example", wantErr: "must be https, http, file"},
		{in: "file://host/path", wantErr: "non-path elements"},
		{in: "file:///p?q=1", wantErr: "non-path elements"},
		{in: "word", wantErr: "missing scheme"},
		{in: "https://a.example/%zz", wantErr: "invalid URL escape"},
	}
	for _, tt := range tests {
		got, err := ParseGOPROXY(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseGOPROXY(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseGOPROXY(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseGOPROXY(f *testing.F) {
	for _, s := range []string{"https://a.example,direct", "off", "a|b,c", "file:///x", ",,|", "direct|off"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseGOPROXY(s)
		if err != nil {
			return
		}
		if len(list) == 0 {
			t.Fatalf("ParseGOPROXY(%q): no entries and no error", s)
		}
		for i, e := range list {
			special := e.Direct || e.Off
			if special && i != len(list)-1 {
				t.Fatalf("ParseGOPROXY(%q): %v is not last", s, e)
			}
			if e.Direct && e.Off || special != (e.URL == "") {
				t.Fatalf("ParseGOPROXY(%q): inconsistent entry %+v", s, e)
			}
			if !special && checkProxyURL(e.URL) != nil {
				t.Fatalf("ParseGOPROXY(%q): bad URL %q accepted", s, e.URL)
			}
		}
	})
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		p         string
		ok, immut bool
	}{
		{"golang.org/x/mod/@v/list", true, false},
		{"golang.org/x/mod/@latest", true, false},
		{"golang.org/x/mod/@v/v0.1.0.info", true, true},
		{"golang.org/x/mod/@v/master.info", true, false},
		{"golang.org/x/mod/@v/v0.1.0.mod", true, true},
		{"golang.org/x/mod/@v/v0.1.0.zip", true, true},
		{"github.com/!burnt!sushi/toml/@v/v1.0.0+incompatible.zip", true, true},
		{"golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip", true, true},
		{"sumdb/sum.example/supported", true, false},
		{"sumdb/sum.example/latest", true, false},
		{"sumdb/sum.example/lookup/golang.org/x/mod@v0.1.0", true, true},
		{"sumdb/sum.example/tile/8/0/000", true, true},
		{"sumdb/sum.example/tile/8/1/x001/002.p/5", true, true},
		{"sumdb/sum.example/tile/8/data/000", true, true},
		{"", false, false},
		{"/golang.org/x/mod/@v/list", false, false},
		{"golang.org/x/../mod/@v/list", false, false},
		{"golang.org/x//mod/@v/list", false, false},
		{`golang.org\x\mod/@v/list`, false, false},
		{"github.com/BurntSushi/toml/@v/list", false, false},
		{"github.com/!!a/@v/list", false, false},
		{"golang.org/x/mod/@v/V1.0.0.info", false, false},
		{"golang.org/x/mod/@v/v1.0.0.txt", false, false},
		{"golang.org/x/mod", false, false},
		{"sumdb/../x/latest", false, false},
		{"sumdb/sum.example/tile/8/0/../000", false, false},
		{"sumdb/sum.example/tile/8/0/0000", false, false},
		{"sumdb/sum.example/lookup/golang.org/x/mod", false, false},
		{"sumdb/sum.example/other", false, false},
	}
	for _, tt := range tests {
		immut, err := checkPath(tt.p)
		if (err == nil) != tt.ok || immut != tt.immut {
			t.Errorf("checkPath(%q) = %v, %v; want ok=%v immutable=%v", tt.p, immut, err, tt.ok, tt.immut)
		}
	}
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"golang.org/x/mod/@v/v0.1.0.zip", "sumdb/s.example/tile/8/0/x001/000.p/3", "a.example/@latest", "../x/@v/list", "sumdb/s.example/lookup/a.example/b@v1.0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		immutable, err := checkPath(p)
		if err != nil {
			if immutable {
				t.Fatalf("checkPath(%q): immutable and invalid", p)
			}
			return
		}
		if !filepath.IsLocal(filepath.FromSlash(p)) || strings.Contains(p, `\`) || path.Clean(p) != p {
			t.Fatalf("checkPath(%q) accepted a path that is not a clean local file name", p)
		}
	})
}
