package goenv

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzSet checks that Set gives the key its value, leaves every other key's
// value alone, and that a second identical Set changes nothing.
func FuzzSet(f *testing.F) {
	f.Add("GOPROXY=a\n# c\nGOFLAGS=-x\n", "GOPROXY", "file:///x/mod")
	f.Add("GOPROXY=a\nGOPROXY=b", "GOPROXY", "c")
	f.Add("x\n\n=\nA=", "A", "")
	f.Add("GOSUMDB=off\r\n", "GOSUMDB", "on")
	f.Fuzz(func(t *testing.T, data, key, val string) {
		path := filepath.Join(t.TempDir(), "env")
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		before, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Set(path, map[string]string{key: val}); err != nil {
			return // invalid key or value
		}
		after, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if after[key] != val {
			t.Fatalf("after Set, %s = %q, want %q", key, after[key], val)
		}
		for k, v := range before {
			if k != key && after[k] != v {
				t.Fatalf("Set(%s) changed %s from %q to %q", key, k, v, after[k])
			}
		}
		for k := range after {
			if _, ok := before[k]; !ok && k != key {
				t.Fatalf("Set(%s) added %s", key, k)
			}
		}
		changed, err := Set(path, map[string]string{key: val})
		if err != nil || len(changed) != 0 {
			t.Fatalf("repeated Set = %v, %v", changed, err)
		}
	})
}
