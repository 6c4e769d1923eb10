package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// State is the bundles installed into a prefix: the state.json of a
// generation, as of the install or rollback that made it current.
type State struct {
	Bundles []BundleRecord `json:"bundles"`
}

// BundleRecord is one installed bundle.
type BundleRecord struct {
	ManifestDigest string `json:"manifestDigest"`
	Digest         string `json:"digest,omitempty"` // OCI manifest digest of the bundle file
	Base           string `json:"base,omitempty"`   // manifest digest of the base, for a delta
	Name           string `json:"name,omitempty"`
	Version        string `json:"version,omitempty"`
	Created        string `json:"created,omitempty"`   // from the manifest
	Installed      string `json:"installed"`           // RFC 3339, UTC
	Signer         string `json:"signer,omitempty"`    // "" if unsigned
	Generation     string `json:"generation"`          // store generation after installing it
	Toolchain      string `json:"toolchain,omitempty"` // Go version installed at PREFIX/go
	// ToolchainDir is the directory under PREFIX/.ferry/toolchains that
	// PREFIX/go pointed to after the install ("" if none).
	ToolchainDir string `json:"toolchainDir,omitempty"`
}

// ReadState reads the state of the prefix: the bundles installed, as of the
// current generation (or the state file of a legacy prefix). A prefix with
// nothing installed has an empty State. It takes no lock: the state a
// generation holds never changes, and the current one is switched by rename.
func ReadState(prefix string) (*State, error) {
	p := &Prefix{dir: prefix}
	cur, err := p.current()
	if err != nil {
		return nil, err
	}
	if cur == "" {
		return readStateFile(p.path(legacyState))
	}
	return readStateFile(p.genPath(cur, genState))
}

// CurrentGeneration returns the generation the prefix is at ("" if none):
// for a legacy prefix, the store generation PREFIX/mod points to.
func CurrentGeneration(prefix string) (string, error) {
	p := &Prefix{dir: prefix}
	cur, err := p.current()
	if err != nil || cur != "" {
		return cur, err
	}
	return p.legacyTarget(modLink, genDir), nil
}

// readStateFile reads a state file; a missing file is an empty State.
func readStateFile(p string) (*State, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading install state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("reading install state %s: %w", p, err)
	}
	return &st, nil
}

func (st *State) find(digest string) int {
	for i, b := range st.Bundles {
		if b.ManifestDigest == digest {
			return i
		}
	}
	return -1
}

// record adds b, replacing an earlier record of the same bundle.
func (st *State) record(b BundleRecord) {
	if i := st.find(b.ManifestDigest); i >= 0 {
		st.Bundles = append(st.Bundles[:i], st.Bundles[i+1:]...)
	}
	st.Bundles = append(st.Bundles, b)
}

// writeState writes st into a generation directory being staged (made
// durable with the rest of it).
func writeState(dir string, st *State) error {
	data, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return fmt.Errorf("encoding install state: %w", err)
	}
	return writeBytes(filepath.Join(dir, genState), append(data, '\n'))
}
