package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/sign"
)

func (a *app) keySignCmd() *cobra.Command {
	var keyPath, out string
	cmd := &cobra.Command{
		Use:   "sign FILE",
		Short: "Sign a file (such as a release's SHA256SUMS) with a bundle signing key",
		Long: `Sign writes a detached signature of FILE to FILE.sig: a signed note
(golang.org/x/mod/sumdb/note, as bundles use) over FILE's SHA-256, made with
the same kind of key that signs bundles. Check it on the far side with
'ferry key verify FILE --key NAME.pub'. An existing signature file is replaced.`,
		Example: "  ferry key sign dist/SHA256SUMS --key release.key",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return fmt.Errorf("--key is required: the private key file (NAME.key) to sign with")
			}
			s, err := sign.LoadSigner(keyPath)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			sig, err := sign.SignFile(s, f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if out == "" {
				out = args[0] + ".sig"
			}
			if err := writeFileAtomic(out, sig); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"file": args[0], "signature": out, "key": s.Name()})
			}
			fmt.Fprintf(a.stdout, "%s: signed by key %s into %s\n", args[0], s.Name(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "private key file (NAME.key) to sign with")
	cmd.Flags().StringVarP(&out, "output", "o", "", "signature file to write (default FILE.sig)")
	return cmd
}

func (a *app) keyVerifyCmd() *cobra.Command {
	var keyPath, sigPath string
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a file's signature made by 'ferry key sign'",
		Long: `Verify checks that FILE.sig is a valid signature of FILE by the key in
--key (a NAME.pub file, or the NAME.key it was derived from), and exits
non-zero with the reason otherwise. To carry ferry itself across the gap, check
SHA256SUMS this way, then the binaries with 'sha256sum -c SHA256SUMS'.`,
		Example: "  ferry key verify SHA256SUMS --key release.pub && sha256sum -c SHA256SUMS",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return fmt.Errorf("--key is required: the public key file (NAME.pub) of the signer")
			}
			v, err := sign.LoadVerifier(keyPath)
			if err != nil {
				return err
			}
			if sigPath == "" {
				sigPath = args[0] + ".sig"
			}
			sig, err := os.ReadFile(sigPath)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			if err := sign.VerifyFile(v, f, sig); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(map[string]any{"file": args[0], "signature": sigPath, "key": v.Name(), "verified": true})
			}
			fmt.Fprintf(a.stdout, "%s: good signature by key %s\n", args[0], v.Name())
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "public key file (NAME.pub) of the signer")
	cmd.Flags().StringVar(&sigPath, "sig", "", "signature file (default FILE.sig)")
	return cmd
}
