package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/term"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/sign"
	"github.com/ferry-dev/ferry/internal/verify"
)

// packSigner returns what pack signs with: the key file given, none with
// --no-sign, else the user's own key, created (and announced, once) on
// first use.
func (a *app) packSigner(keyFile string, noSign bool) (note.Signer, string, error) {
	switch {
	case noSign && keyFile != "":
		return nil, "", errors.New("give --sign-key or --no-sign, not both")
	case noSign:
		return nil, "", nil
	}
	if keyFile == "" {
		dir, err := sign.ConfigDir()
		if err != nil {
			return nil, "", fmt.Errorf("%w (give --sign-key FILE or --no-sign)", err)
		}
		path, vkey, created, err := sign.UserKey(dir)
		if err != nil {
			return nil, "", fmt.Errorf("%w (give --sign-key FILE or --no-sign)", err)
		}
		if created {
			fp, _ := sign.Fingerprint(vkey)
			fmt.Fprintf(a.stderr, "ferry: created your signing key %s (%s, fingerprint %s); bundles you pack are signed with it.\n"+
				"ferry: the far side trusts it on its first prompt (compare the fingerprint) or with --key %s\n",
				path, sign.KeyName(vkey), fp, sign.UserPublicKey(dir))
		}
		keyFile = path
	}
	s, err := sign.LoadSigner(keyFile)
	if err != nil {
		return nil, "", err
	}
	vkey, err := sign.VerifierKey(keyFile)
	if err != nil {
		return nil, "", err
	}
	return s, vkey, nil
}

// trustedKeysFile returns the trusted keys file the flags name, or the
// user's.
func (t *trustFlags) trustedKeysFile() (string, error) {
	if t.trustedKeys != "" {
		return t.trustedKeys, nil
	}
	dir, err := sign.ConfigDir()
	if err != nil {
		return "", err
	}
	return sign.TrustedKeysFile(dir), nil
}

// trustOptions decides, before any bytes are hashed, what the bundle src
// is verified with: the --key files; else, for a signed bundle, a key the
// user trusts (the trusted keys file, the user's own key, or one the user
// accepts at a prompt); else the checksum database key of this host. Each
// way it cannot trust the bundle is an error that says which fix applies.
func (a *app) trustOptions(ctx context.Context, src bundle.Source, t *trustFlags, goroots []string) (verify.Options, error) {
	opt := verify.Options{Jobs: t.jobs, Deep: t.deep}
	f := fileOf(src)
	m := src.Manifest()
	switch {
	case len(t.keys) > 0:
		vs, err := verifiers(t.keys)
		if err != nil {
			return opt, err
		}
		if _, err := f.CheckSignature(vs); err != nil {
			return opt, fmt.Errorf("%w: --key names no key that signed it", err)
		}
		opt.Signers = vs
	case f.Signature() != "":
		vs, err := a.trustedSigner(f, t)
		if err != nil {
			return opt, err
		}
		opt.Signers = vs
	}
	// A bundle signed by a key the user trusts vouches for the checksum
	// database key it recorded.
	opt.TrustBundleKey = opt.Signers != nil
	if m.SumDB == nil {
		if !opt.TrustBundleKey && needsProofs(m) {
			return opt, fmt.Errorf("%s is unsigned and carries no checksum database snapshot: nothing here can prove its modules; have it packed signed (ferry pack signs by default) and trust its key", f.Path())
		}
		return opt, nil
	}
	trust := verify.LocalTrust(ctx, m.SumDB.Name, t.sumdbKey, goroots...)
	opt.SumDBKey, opt.NoSumDB = trust.SumDBKey, trust.NoSumDB
	if opt.SumDBKey == "" && !opt.TrustBundleKey && needsProofs(m) {
		return opt, fmt.Errorf("%s is unsigned and %s for checksum database %s: have it packed signed (ferry pack signs by default) and trust its key, or pass --sumdb-key with the key of %s",
			f.Path(), trust.Missing, m.SumDB.Name, m.SumDB.Name)
	}
	return opt, nil
}

// needsProofs reports whether the manifest has module files the checksum
// database must prove.
func needsProofs(m *bundle.Manifest) bool {
	for _, it := range m.Items {
		if k, err := bundle.KindOf(it.File); err == nil && (k == bundle.KindZip || k == bundle.KindMod) && !it.NoSumDB {
			return true
		}
	}
	return false
}

// trustedSigner returns verifiers for the signed bundle f: the keys the
// user trusts, if one of them signed it; else the key the bundle names, if
// its signature holds and the user accepts its fingerprint at a prompt.
func (a *app) trustedSigner(f *bundle.Reader, t *trustFlags) (note.Verifiers, error) {
	file, err := t.trustedKeysFile()
	if err != nil {
		return nil, fmt.Errorf("%w (give --key FILE)", err)
	}
	known, err := sign.ReadTrusted(file)
	if err != nil {
		return nil, err
	}
	if dir, err := sign.ConfigDir(); err == nil {
		if own, err := sign.VerifierKey(sign.UserPublicKey(dir)); err == nil {
			known = append(known, own)
		}
	}
	if len(known) > 0 {
		vs, err := sign.Verifiers(known)
		if err != nil {
			return nil, err
		}
		if _, err := f.CheckSignature(vs); err == nil {
			return vs, nil
		}
	}

	claimed := f.SignerKey()
	if claimed == "" {
		return nil, fmt.Errorf("%s is signed by %s, a key not trusted here (the bundle does not carry the public key): pass --key with the signer's .pub file", f.Path(), signerNames(f.Signature()))
	}
	cv, err := sign.Verifiers([]string{claimed})
	if err != nil {
		return nil, fmt.Errorf("%s names its signer's key badly (%v): do not use it", f.Path(), err)
	}
	if _, err := f.CheckSignature(cv); err != nil {
		return nil, fmt.Errorf("%s: its signature does not verify with the key it names: do not use it (%v)", f.Path(), err)
	}
	fp, err := sign.Fingerprint(claimed)
	if err != nil {
		return nil, err
	}
	name := sign.KeyName(claimed)
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, fmt.Errorf("%s is signed by %s (key fingerprint %s), which is not trusted here: if that is the packer's fingerprint, trust it with: ferry key trust '%s' (adds it to %s), or pass --key with the signer's .pub file",
			f.Path(), name, fp, claimed, file)
	}
	fmt.Fprintf(a.stderr, "%s is signed by %s\nkey fingerprint %s\nThis key is not trusted here. Compare the fingerprint with the packer's (ferry pack printed it).\nTrust this key for bundles from now on (adds it to %s)? [y/N] ", f.Path(), name, fp, file)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
		return nil, fmt.Errorf("%s: signer %s (%s) not trusted", f.Path(), name, fp)
	}
	if err := sign.AddTrusted(file, claimed, "trusted "+time.Now().UTC().Format("2006-01-02")+" for "+f.Path()); err != nil {
		return nil, err
	}
	fmt.Fprintf(a.stderr, "ferry: trusted %s (%s) in %s\n", name, fp, file)
	return cv, nil
}

func (a *app) keyTrustCmd() *cobra.Command {
	var t trustFlags
	cmd := &cobra.Command{
		Use:   "trust KEY|FILE.pub",
		Short: "Trust a signer's key for bundles on this host",
		Long: `Trust adds a signer's verifier key (the line "NAME+HASH+KEYDATA", or a .pub
file holding it) to the trusted keys file, as OpenSSH adds a host to
known_hosts. verify, install and import then accept bundles it signed
without --key. Compare the fingerprint it prints with the one the packer's
ferry printed before you trust a key.`,
		Example: `  ferry key trust release-team.pub
  ferry key trust 'alice@build1+1a2b3c4d+AbCd...'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vkey := args[0]
			if _, err := note.NewVerifier(vkey); err != nil {
				if vkey, err = sign.VerifierKey(args[0]); err != nil {
					return fmt.Errorf("%s is neither a verifier key nor a key file: %w", args[0], err)
				}
			}
			file, err := t.trustedKeysFile()
			if err != nil {
				return err
			}
			fp, err := sign.Fingerprint(vkey)
			if err != nil {
				return err
			}
			if err := sign.AddTrusted(file, vkey, "trusted "+time.Now().UTC().Format("2006-01-02")); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"key": vkey, "name": sign.KeyName(vkey), "fingerprint": fp, "file": file})
			}
			fmt.Fprintf(a.stdout, "trusted %s (%s) in %s\n", sign.KeyName(vkey), fp, file)
			return nil
		},
	}
	cmd.Flags().StringVar(&t.trustedKeys, "trusted-keys", "", "file of trusted signer keys (default: user config dir/ferry/trusted_keys)")
	return cmd
}
