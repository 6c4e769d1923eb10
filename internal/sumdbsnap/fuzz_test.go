package sumdbsnap

import (
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func FuzzParseGOSUMDB(f *testing.F) {
	f.Add("db.example")
	f.Add("off")
	f.Add("db.example+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA https://mirror.example")
	f.Add("a b c")
	f.Add(" \t")
	f.Fuzz(func(t *testing.T, v string) {
		name, key, url, err := ParseGOSUMDB(v)
		if err != nil {
			return
		}
		if name == "" || strings.ContainsAny(name+key+url, " \t\n") {
			t.Fatalf("ParseGOSUMDB(%q) = %q, %q, %q", v, name, key, url)
		}
		if key != "" {
			vr, err := note.NewVerifier(key)
			if err != nil || vr.Name() != name {
				t.Fatalf("ParseGOSUMDB(%q): key %q does not verify for %q", v, key, name)
			}
		}
	})
}
