package main

import (
	"github.com/spf13/cobra"

	"github.com/serin-dev/serin/pkg/analysis"
)

func newAbortCommand(k *kube) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "abort NAME",
		Short: "Roll a release back now",
		Long: `Roll a release back now, as when its failed checks reach the threshold:
traffic goes back to the primary, the canary is scaled down and the phase
is Failed. A release that is already being promoted cannot be aborted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return requestOperation(cmd.Context(), k, cmd.OutOrStdout(), args[0], analysis.OperationAbort, w)
		},
	}
	w.add(cmd)
	return cmd
}
