package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ferry-dev/ferry/internal/durable"
)

// State is PREFIX/.ferry/state.json: the bundles installed into a prefix.
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

// ReadState reads PREFIX/.ferry/state.json; a missing file is an empty State.
func ReadState(prefix string) (*State, error) {
	p := filepath.Join(prefix, ferryDir, "state.json")
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

func writeState(prefix string, st *State) error {
	data, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return fmt.Errorf("encoding install state: %w", err)
	}
	p := filepath.Join(prefix, ferryDir, "state.json")
	if err := writeBytes(p, append(data, '\n')); err != nil {
		return err
	}
	return durable.Dir(filepath.Dir(p))
}
