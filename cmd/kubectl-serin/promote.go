package main

import (
	"github.com/spf13/cobra"

	"github.com/serin-dev/serin/pkg/analysis"
)

func newPromoteCommand(k *kube) *cobra.Command {
	var full bool
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "promote NAME [--full]",
		Short: "Pass the current gate or step of a release now",
		Long: `Pass the current gate or step of a release once: a closed confirm-rollout,
confirm-traffic-increase or confirm-promotion gate counts as open, and a
release in Progressing takes its next weight step (or iteration) now,
without waiting for the interval or running the checks.

With --full, skip the remaining steps and promote now; the release still
goes through Promoting and Finalising.`,
		Example: `  kubectl serin promote podinfo -n test
  kubectl serin promote podinfo --full`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := analysis.OperationPromote
			if full {
				op = analysis.OperationPromoteFull
			}
			return requestOperation(cmd.Context(), k, cmd.OutOrStdout(), args[0], op, w)
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "skip the remaining steps and promote now")
	w.add(cmd)
	return cmd
}
