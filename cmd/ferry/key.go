package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/sign"
)

func (a *app) keyCmd() *cobra.Command {
	key := &cobra.Command{
		Use:   "key",
		Short: "Manage bundle signing keys",
	}
	var dir string
	gen := &cobra.Command{
		Use:   "generate NAME",
		Short: "Create an ed25519 key pair NAME.key (private) and NAME.pub (public)",
		Long: `Generate writes NAME.key (private, mode 0600) and NAME.pub (public) in the
note format of golang.org/x/mod/sumdb/note. Sign bundles with
'ferry pack --sign-key NAME.key'; require the signature on the far side with
'ferry verify --key NAME.pub' or 'ferry install --key NAME.pub'. Existing
files are never overwritten.`,
		Example: "  ferry key generate release-team",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, p, err := sign.GenerateKey(dir, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"private": k, "public": p})
			}
			fmt.Fprintf(a.stdout, "private key: %s (keep it secret)\npublic key:  %s (give it to the offline side)\n", k, p)
			return nil
		},
	}
	gen.Flags().StringVar(&dir, "dir", ".", "directory to write the key files in")
	key.AddCommand(a.keySignCmd(), a.keyVerifyCmd())
	key.AddCommand(gen, a.keyTrustCmd())
	return key
}
