package main

import (
	"github.com/spf13/cobra"

	"github.com/serin-dev/serin/pkg/analysis"
)

func newRetryCommand(k *kube) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "retry NAME",
		Short: "Run a Failed analysis again for the same revision",
		Long: `Run a Failed analysis again for the same revision, from its first step
(behind the confirm-rollout gate, if any). Without it, a Failed revision
stays Failed until the target changes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return requestOperation(cmd.Context(), k, cmd.OutOrStdout(), args[0], analysis.OperationRetry, w)
		},
	}
	w.add(cmd)
	return cmd
}
