package main

import (
	"github.com/spf13/cobra"

	"github.com/serin-dev/serin/pkg/analysis"
)

func newPauseCommand(k *kube) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "pause NAME",
		Short: "Hold a release where it is",
		Long: `Hold a release where it is: the weights stay, no checks run and nothing
advances, also across controller restarts, until resume (or abort).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return requestOperation(cmd.Context(), k, cmd.OutOrStdout(), args[0], analysis.OperationPause, w)
		},
	}
	w.add(cmd)
	return cmd
}
