package main

import (
	"github.com/spf13/cobra"

	"github.com/serin-dev/serin/pkg/analysis"
)

func newResumeCommand(k *kube) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "resume NAME",
		Short: "Continue a paused release",
		Long:  `Continue a paused release; its next step comes one interval later.`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return requestOperation(cmd.Context(), k, cmd.OutOrStdout(), args[0], analysis.OperationResume, w)
		},
	}
	w.add(cmd)
	return cmd
}
