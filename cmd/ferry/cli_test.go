package main

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/image"
	"github.com/ferry-dev/ferry/internal/install"
	"github.com/ferry-dev/ferry/internal/push"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/verify"
)

// runFerry runs ferry in process with args and returns its exit status,
// stdout and stderr.
func runFerry(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr}
	code := a.run(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

// allCommands returns root and every command under it.
func allCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		out = append(out, allCommands(c)...)
	}
	return out
}

// valueName is what a backquoted word in a flag's usage must be: pflag
// shows it as the flag's value name (--sign-key FILE), so it must read as
// one, in capitals (FILE, SIZE, PACKAGE@VERSION).
var valueName = regexp.MustCompile(`^[A-Z][A-Z0-9_@./:\[\]-]*$`)

// TestFlagUsageValueNames: pflag takes the first backquoted text of a
// flag's usage as its value name and drops the backquotes from the text,
// so `go install X` in a usage line became "--tool go install X". Every
// backquoted text of every flag of every command must be a value name.
func TestFlagUsageValueNames(t *testing.T) {
	a := &app{stdout: new(bytes.Buffer), stderr: new(bytes.Buffer)}
	n := 0
	for _, cmd := range allCommands(a.rootCmd()) {
		check := func(f *pflag.Flag) {
			n++
			if strings.Count(f.Usage, "`")%2 != 0 {
				t.Errorf("%s --%s: unpaired backquote in usage %q", cmd.CommandPath(), f.Name, f.Usage)
			}
			parts := strings.Split(f.Usage, "`")
			for i := 1; i < len(parts); i += 2 {
				if !valueName.MatchString(parts[i]) {
					name, _ := pflag.UnquoteUsage(f)
					t.Errorf("%s --%s: usage %q backquotes %q, which --help shows as the value name (--%s %s): quote it with '...' or name a value",
						cmd.CommandPath(), f.Name, f.Usage, parts[i], f.Name, name)
				}
			}
		}
		cmd.Flags().VisitAll(check)
		cmd.PersistentFlags().VisitAll(check)
	}
	if n < 50 {
		t.Fatalf("checked only %d flags", n)
	}
}

// TestUsageErrors: a command called wrongly exits 2 (as the go command
// does) with a one-line error naming the command and a usage line; with
// --json, stdout holds one JSON object with both.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args  []string
		error string
		usage string
	}{
		{[]string{"install"}, "ferry install: accepts 1 arg(s), received 0", "usage: ferry install BUNDLE [flags]; see ferry install --help"},
		{[]string{"install", "a.ferry", "--bogus"}, "ferry install: unknown flag: --bogus", "usage: ferry install BUNDLE [flags]; see ferry install --help"},
		{[]string{"verify", "a.ferry", "b.ferry"}, "ferry verify: accepts 1 arg(s), received 2", "usage: ferry verify BUNDLE [flags]; see ferry verify --help"},
		{[]string{"pack", "."}, `ferry pack: required flag(s) "output" not set`, "usage: ferry pack [DIR ...] -o BUNDLE [flags]; see ferry pack --help"},
		{[]string{"state", "export", "a", "b"}, "ferry state export: accepts at most 1 arg(s), received 2", "usage: ferry state export [BUNDLE] [flags]; see ferry state export --help"},
		{[]string{"pakc"}, `ferry: unknown command "pakc" for "ferry" (did you mean pack?)`, "usage: ferry COMMAND [flags]; see ferry --help"},
		{[]string{"prune", "--jobs", "x"}, "ferry prune: unknown flag: --jobs", "usage: ferry prune BUNDLE... [flags]; see ferry prune --help"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stdout, stderr := runFerry(t, c.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if want := c.error + "\n" + c.usage + "\n"; stderr != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
			}
			if stdout != "" {
				t.Errorf("stdout without --json: %q", stdout)
			}
			code, stdout, _ = runFerry(t, append(c.args, "--json")...)
			var got map[string]string
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("with --json, stdout is not a JSON object: %v\n%s", err, stdout)
			}
			if code != 2 || got["error"] != c.error || got["usage"] != c.usage {
				t.Errorf("with --json: exit status %d, stdout %v", code, got)
			}
		})
	}
}

// TestJSONErrors: any command run with --json that fails prints a JSON
// object naming the error on stdout, with the exit status it has without.
func TestJSONErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.ferry")
	for _, args := range [][]string{
		{"verify", missing},
		{"install", missing, "--prefix", filepath.Join(dir, "prefix")},
		{"ls", missing},
		{"diff", missing, missing},
		{"import", missing, "--store", filepath.Join(dir, "store")},
		{"state", "export", "--prefix", filepath.Join(dir, "noprefix")},
		{"rollback", "--prefix", filepath.Join(dir, "noprefix")},
	} {
		t.Run(strings.Join(args[:1], " "), func(t *testing.T) {
			code, stdout, stderr := runFerry(t, args...)
			if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "ferry: ") {
				t.Fatalf("ferry %s: exit status %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
			}
			code, stdout, _ = runFerry(t, append(args, "--json")...)
			var got map[string]any
			dec := json.NewDecoder(strings.NewReader(stdout))
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("ferry %s --json: stdout is not one JSON object (%v):\n%s", strings.Join(args, " "), err, stdout)
			}
			msg, _ := got["error"].(string)
			if code != 1 || msg != strings.TrimSpace(strings.TrimPrefix(stderr, "ferry: ")) {
				t.Errorf("ferry %s --json: exit status %d, stdout %v; want 1 and {\"error\": %q}", strings.Join(args, " "), code, got, strings.TrimPrefix(stderr, "ferry: "))
			}
		})
	}
}

// TestJSONKeysCamelCase: every key of what the commands print with --json
// is camelCase: a field without a json tag would print as PascalCase.
func TestJSONKeysCamelCase(t *testing.T) {
	for _, v := range []any{
		packReport{}, store.BundleInfo{}, store.PruneReport{}, verify.Report{},
		install.Report{}, install.State{}, install.RollbackReport{},
		bundle.Diff{}, bundle.Manifest{}, bundle.SplitIndex{}, image.Result{}, push.Report{},
	} {
		checkJSONKeys(t, reflect.TypeOf(v).String(), reflect.TypeOf(v), map[reflect.Type]bool{})
	}
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func checkJSONKeys(t *testing.T, path string, typ reflect.Type, seen map[reflect.Type]bool) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || seen[typ] || typ.Implements(jsonMarshaler) || reflect.PointerTo(typ).Implements(jsonMarshaler) ||
		typ.Implements(textMarshaler) || reflect.PointerTo(typ).Implements(textMarshaler) {
		return
	}
	seen[typ] = true
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			checkJSONKeys(t, path, f.Type, seen) // promoted fields
			continue
		}
		key := tag
		if key == "" {
			key = f.Name
		}
		if r := []rune(key); !unicode.IsLower(r[0]) || strings.ContainsAny(key, "_- ") {
			t.Errorf("%s.%s: JSON key %q is not camelCase", path, f.Name, key)
		}
		checkJSONKeys(t, path+"."+key, f.Type, seen)
	}
}

// TestStoreNotCreated: only import (and serve BUNDLE) make a store; the
// rest name the missing store and say how to make one, and create nothing.
func TestStoreNotCreated(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo")
	for _, args := range [][]string{
		{"state", "--store", typo},
		{"prune", "app@v1.0.0", "--store", typo},
		{"serve", "--store", typo, "--listen", "127.0.0.1:0"},
	} {
		code, stdout, stderr := runFerry(t, args...)
		want := "ferry: store " + typo + " does not exist: create it with 'ferry import BUNDLE --store " + typo + "'\n"
		if code != 1 || stdout != "" || stderr != want {
			t.Errorf("ferry %s: exit status %d, stdout %q, stderr:\n%s\nwant 1 and:\n%s", strings.Join(args, " "), code, stdout, stderr, want)
		}
		if _, err := os.Stat(typo); err == nil {
			t.Fatalf("ferry %s created %s", strings.Join(args, " "), typo)
		}
	}
}
